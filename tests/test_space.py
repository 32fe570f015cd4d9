"""``zoo space``: the exported folder is a valid Gradio Space and its app.py serves requests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import free_port, stop

from zoo.demos.space import read_front_matter


def _zoo(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    """A Space exported by the command line from the digits model."""
    from zoo.demos.standins import digits_model

    model = digits_model(tmp_path_factory.mktemp("models"))
    out = tmp_path_factory.mktemp("export") / "space"
    r = _zoo("space", model, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    return out, model


def test_space_folder_has_app_requirements_readme_and_weights(space):
    from importlib.metadata import version

    out, model = space
    assert {p.name for p in out.iterdir()} == {"app.py", "requirements.txt", "README.md", "model"}
    assert {p.name for p in (out / "model").iterdir()} == {"config.json", "model.safetensors"}
    meta = read_front_matter(out / "README.md")
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == version("gradio")
    assert meta["app_file"] == "app.py"
    assert meta["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert meta["license"] == "mit"
    assert meta["models"] == []             # weights are copied, not on the Hub
    assert "zoo==" in (out / "requirements.txt").read_text()
    compile((out / "app.py").read_text(), "app.py", "exec")


def test_exported_app_answers_a_request(space, tmp_path):
    from gradio_client import Client, handle_file

    from zoo.demos.base import EXAMPLES_DIR

    out, _ = space
    port = free_port()
    log = tmp_path / "app.log"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ZOO_CATALOG")}
    env.update(GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False",
               OMP_NUM_THREADS="1")
    with open(log, "w") as fh:
        # cwd is the Space folder: nothing from this repository but the installed package
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=out, env=env, stdout=fh,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while "Serving on " not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        url = log.read_text().split("Serving on ", 1)[1].split()[0]
        assert url.startswith(f"http://127.0.0.1:{port}")
        answer = Client(url, verbose=False).predict(
            handle_file(str(EXAMPLES_DIR / "digit_7.png")), api_name="/predict")
        assert answer["label"] == "7"
    finally:
        stop(proc)


def test_space_with_a_hub_pointer_names_the_model_and_copies_no_weights(tmp_path):
    from zoo.demos.space import export_space

    out = export_space("gcn.karate", tmp_path / "s", hub_model="someone/gcn-karate")
    assert not (out / "model").exists()
    assert "hf-hub:someone/gcn-karate" in (out / "app.py").read_text()
    meta = read_front_matter(out / "README.md")
    assert meta["models"] == ["someone/gcn-karate"]
    assert meta["license"] == "mit"


def test_space_refuses_a_non_empty_folder_and_unknown_models(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    r = _zoo("space", "gcn.karate", "--out", str(tmp_path / "busy"))
    assert r.returncode == 2 and "exists and is not empty" in r.stderr
    r = _zoo("space", "gcnn.karate", "--out", str(tmp_path / "new"))
    assert r.returncode == 2 and "unknown model 'gcnn'" in r.stderr
    assert not (tmp_path / "new").exists()
    assert not list(Path(tmp_path).glob(".*partial"))
