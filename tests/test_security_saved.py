"""Issue 14 item 1: a saved directory or Hub repo is data; its config.json cannot steer the
builder past what the catalog entry declares.

Each attack goes through a real ``zoo get`` (in a fresh interpreter with an audit hook, or
in-process through typer's CliRunner) and checks the refusal, that the canary file was
never opened and that the pickle payload never ran.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from canary import files_under, opens_under, pickle_bomb, run_audited
from hubserver import HubServer
from typer.testing import CliRunner

import zoo
from zoo.cli import app
from zoo.loading import build


def _save(name: str, folder: Path) -> Path:
    spec, tag = zoo.api.spec(name)
    return build.save(zoo.get(name), folder, spec=spec, tag=tag)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[str, Path]:
    """timm/test_resnet and bert_tiny saved once (random weights; both small)."""
    root = tmp_path_factory.mktemp("pristine")
    return {"timm": _save("timm/test_resnet", root / "timm"),
            "bert": _save("bert_tiny", root / "bert")}


def _tamper(pristine: dict[str, Path], which: str, dest: Path, **kwargs) -> Path:
    """A copy of a pristine saved model whose config.json kwargs gain ``kwargs``."""
    d = Path(shutil.copytree(pristine[which], dest))
    config = json.loads((d / "config.json").read_text())
    config["kwargs"].update(kwargs)
    (d / "config.json").write_text(json.dumps(config))
    return d


def _refused(res, *names: str) -> str:
    """Exit 2 with one ``Error:`` line naming each of ``names``; no traceback."""
    err = res.stderr.strip()
    assert res.exit_code == 2, (res.exit_code, err, repr(res.exception))
    assert len(err.splitlines()) == 1 and err.startswith("Error: "), err
    for n in names:
        assert n in err, (n, err)
    return err


def test_h1_saved_dir_cannot_set_checkpoint_path(pristine, tmp_path):
    marker = tmp_path / "payload-ran"
    (tmp_path / "outside").mkdir()
    bomb = pickle_bomb(tmp_path / "outside" / "evil.pth", marker)
    d = _tamper(pristine, "timm", tmp_path / "model", checkpoint_path=str(bomb))
    run = run_audited("get", str(d), watch=[tmp_path / "outside"])
    line = run.error_line()
    assert run.returncode == 2 and "kwargs.checkpoint_path" in line, run.stderr
    assert run.opened == [], f"zoo opened {run.opened}"
    assert not marker.exists(), "the pickle in checkpoint_path ran"


def test_h1_saved_dir_cannot_make_timm_read_a_file_of_its_choosing(pristine, tmp_path):
    secret = tmp_path / "outside" / "weights.safetensors"
    secret.parent.mkdir()
    shutil.copy(pristine["timm"] / "model.safetensors", secret)
    d = _tamper(pristine, "timm", tmp_path / "model", pretrained=True,
                pretrained_cfg_overlay={"file": str(secret)})
    with opens_under(secret.parent) as opened:
        res = CliRunner().invoke(app, ["get", str(d)])
    _refused(res, "kwargs.pretrained", "timm/test_resnet")
    assert opened == [], f"zoo opened {opened}"


def test_h1_hub_repo_cannot_set_checkpoint_path(pristine, tmp_path, monkeypatch):
    marker = tmp_path / "payload-ran"
    (tmp_path / "outside").mkdir()
    bomb = pickle_bomb(tmp_path / "outside" / "evil.pth", marker)
    _tamper(pristine, "timm", tmp_path / "hub" / "mallory" / "resnet",
            checkpoint_path=str(bomb))
    with HubServer(tmp_path / "hub") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        with opens_under(tmp_path / "outside") as opened:
            res = CliRunner().invoke(app, ["get", "hf-hub:mallory/resnet"])
    _refused(res, "kwargs.checkpoint_path", "timm/test_resnet")
    assert opened == [] and not marker.exists()
    assert any("/resolve/" in path for _, path in hub.requests), "the Hub was not asked"


@pytest.mark.parametrize(("key", "value"), [
    ("attn_implementation", "flash_attention_2"), ("trust_remote_code", True),
    ("_name_or_path", "/etc"), ("tokenizer_name_or_path", "/etc"),
])
def test_h1_saved_dir_cannot_pass_transformers_config_keys(pristine, tmp_path, key, value):
    d = _tamper(pristine, "bert", tmp_path / "model", **{key: value})
    _refused(CliRunner().invoke(app, ["get", str(d)]), f"kwargs.{key}", "bert_tiny")


@pytest.mark.parametrize(("which", "key", "value", "why"), [
    ("bert", "num_classes", True, "must be an integer"),        # bool is not int
    ("bert", "num_classes", 2.5, "must be an integer"),
    ("bert", "hidden_size", "128", "must be an integer"),
    ("timm", "model_name", ["resnet50"], "must be a string"),
    ("timm", "model_name", "resnet50", "neither the catalog's value"),
    ("timm", "model_name", "/etc/passwd", "neither the catalog's value"),
    ("timm", "model_name", "package:zoo/../../../etc/passwd", "neither the catalog's value"),
])
def test_h1_saved_dir_values_must_have_the_declared_type(pristine, tmp_path, which, key,
                                                         value, why):
    d = _tamper(pristine, which, tmp_path / "model", **{key: value})
    _refused(CliRunner().invoke(app, ["get", str(d)]), f"kwargs.{key}", why)


def test_h1_saved_dir_files_and_weights_cannot_link_outside(pristine, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "private.safetensors"
    shutil.copy(pristine["bert"] / "model.safetensors", secret)
    d = Path(shutil.copytree(pristine["bert"], tmp_path / "model"))
    (d / "model.safetensors").unlink()
    (d / "model.safetensors").symlink_to(secret)
    before = files_under(tmp_path)
    with opens_under(outside) as opened:
        res = CliRunner().invoke(app, ["get", str(d)])
    _refused(res, "'weights'", "outside the directory")
    assert opened == [] and files_under(tmp_path) == before


def test_h1_kwargs_the_catalog_declares_still_load(pristine, tmp_path):
    """The rule refuses what the catalog does not declare, not what it does: num_classes
    is declared by timm/test_resnet's tag (1000 fits the saved head)."""
    d = _tamper(pristine, "timm", tmp_path / "model", num_classes=1000)
    res = CliRunner().invoke(app, ["get", str(d), "--json"])
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["output_shape"] == [1, 1000]
