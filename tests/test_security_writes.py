"""Issue 14 item 7: zoo never replaces a user's model or results without ``--overwrite``.

``zoo get NAME --save DIR`` over a saved (or fine-tuned) model and ``zoo finetune --out DIR``
over a folder holding a model or metrics are refused in one line, before anything is built
or trained, and every byte in DIR stays as it was; ``--overwrite`` does replace them, and
``--resume`` still continues a run from its checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import refused
from typer.testing import CliRunner

from zoo.cli import app


def zoo(*args: str):
    return CliRunner().invoke(app, list(args))


def contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def trained(tmp_path) -> Path:
    """lenet5.digits saved by ``zoo get --save``: a trained model someone keeps."""
    d = tmp_path / "keep"
    assert zoo("get", "lenet5.digits", "--save", str(d)).exit_code == 0
    return d


def test_h7_get_save_does_not_replace_a_saved_model(trained):
    before = contents(trained)
    refused(zoo("get", "lenet5", "--save", str(trained)), "already holds a saved model",
            "--overwrite")
    assert contents(trained) == before


def test_h7_get_save_overwrite_replaces_only_the_model(trained):
    (trained / "notes.txt").write_text("mine")
    res = zoo("get", "lenet5", "-k", "num_classes=3", "--save", str(trained), "--overwrite",
              "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads((trained / "config.json").read_text())["kwargs"]["num_classes"] == 3
    assert (trained / "notes.txt").read_text() == "mine"


def test_h7_finetune_out_does_not_overwrite_a_users_config_and_metrics(trained):
    (trained / "metrics.json").write_text('{"final": {"accuracy": 0.99}}\n')
    before = contents(trained)
    run = ["finetune", "lenet5", "--data", "digits", "--out", str(trained), "--epochs", "1",
           "--limit", "32"]
    err = refused(zoo(*run), "config.json", "metrics.json", "--overwrite")
    assert "earlier run or a saved model" in err
    refused(zoo(*run, "--resume"), "no checkpoint to resume")
    assert contents(trained) == before
    res = zoo(*run, "--overwrite")
    assert res.exit_code == 0, res.stderr
    assert json.loads((trained / "metrics.json").read_text())["epochs"][0]["epoch"] == 1


def test_h7_finetune_resume_keeps_working(tmp_path):
    out = tmp_path / "run"
    run = ["finetune", "lenet5", "--data", "digits", "--out", str(out), "--epochs", "1",
           "--limit", "32"]
    assert zoo(*run).exit_code == 0
    refused(zoo(*run), "--resume")                 # an earlier run: not silently replaced
    res = zoo(*run, "--resume")
    assert res.exit_code == 0, res.stderr
