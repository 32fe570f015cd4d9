"""zoo.shipping: trained weights out, the catalog lines to paste back in, and they load."""

from __future__ import annotations

import json
import textwrap
import tomllib

import pytest
import torch
from helpers import one_line, snapshot
from torch import nn

import zoo
from zoo.errors import UsageError
from zoo.loading.weights import sha256_of
from zoo.registry import reset_default
from zoo.shipping import catalog_block, run_script, ship, warmup_cosine


def _linear() -> nn.Linear:
    torch.manual_seed(3)
    return nn.Linear(4, 3)


def test_pasted_block_builds_the_shipped_weights(tmp_path, monkeypatch, capsys):
    model = _linear()
    path = tmp_path / "out" / "lin.safetensors"          # the folder is made
    shipped = ship(model, path, name="tiny-linear", tag="mine", kwargs={"out_features": 3},
                   labels=["a", "b", "c"], dataset="made-up", metrics={"accuracy": 0.5},
                   description='a "quoted"\nline, café', source=f"file:{path}",
                   fields={"default": True})
    assert shipped.sha256 == sha256_of(path) and shipped.bytes == path.stat().st_size
    assert path.stat().st_mode & 0o777 == 0o644
    assert str(shipped) in capsys.readouterr().out
    assert shipped.record is None and not path.with_suffix(".json").exists()
    table = tomllib.loads(str(shipped))["models"]["tiny-linear"]["pretrained"]["mine"]
    assert table["description"] == 'a "quoted"\nline, café' and table["default"] is True

    catalog = tmp_path / "mine.toml"
    catalog.write_text(textwrap.dedent("""
        [models.tiny-linear]
        family = "cnn"
        task = "image-classification"
        builder = "torch.nn:Linear"
        kwargs = { in_features = 4, out_features = 9 }

    """) + str(shipped))
    monkeypatch.setenv("ZOO_CATALOG", str(catalog))
    reset_default()
    try:
        again = zoo.get("tiny-linear.mine")
    finally:
        reset_default()
    assert all(torch.equal(a, b) for a, b in zip(snapshot(again).values(),
                                                  snapshot(model).values(), strict=True))


def test_sidecar_records_the_entry_and_keeps_extra_figures(tmp_path):
    path = tmp_path / "lin.safetensors"
    shipped = ship(_linear(), path, name="lin", tag="t", kwargs={"out_features": 3},
                   labels=("x", "y", "z"), dataset="d", metrics={"acc": 0.9},
                   sidecar={"epochs": 2, "metrics": {"acc": 0.9, "train-acc": 1.0}}, echo=False)
    record = json.loads(path.with_suffix(".json").read_text())
    assert record == shipped.record == {
        "model": "lin.t", "dataset": "d", "kwargs": {"out_features": 3},
        "labels": ["x", "y", "z"], "epochs": 2, "metrics": {"acc": 0.9, "train-acc": 1.0},
        "sha256": sha256_of(path), "bytes": path.stat().st_size}
    assert tomllib.loads(shipped.toml)["models"]["lin"]["pretrained"]["t"]["metrics"] == \
        {"acc": 0.9}                                  # the catalog gets only what it states


@pytest.mark.parametrize(("bad", "match"), [
    ({"metrics": {"per-class": {"a": 0.5}}}, "metrics must be numbers"),
    ({"kwargs": {"vocab": None}}, "kwargs.vocab' is None"),
    ({"tag": "Digits"}, "invalid pretrained tag"),
    ({"fields": {"sha": "x"}}, "sha"),
])
def test_refuses_what_the_catalog_would_before_writing(tmp_path, bad, match):
    path = tmp_path / "w.safetensors"
    args = {"name": "m", "tag": "t", "metrics": {"acc": 1.0}} | bad
    with pytest.raises(UsageError, match=match) as e:
        ship(_linear(), path, **args)
    one_line(e)
    assert not path.exists()


def test_block_quotes_keys_the_catalog_quotes():
    block = catalog_block("lenet5", "digits-edges", source="package:zoo/trained/x.safetensors",
                          metrics={"accuracy": 0.98, "upload-accuracy": 1.0})
    assert block.splitlines() == [
        "[models.lenet5.pretrained.digits-edges]",
        'source = "package:zoo/trained/x.safetensors"',
        'metrics = { accuracy = 0.98, "upload-accuracy" = 1.0 }']


def test_run_script_reads_options_off_mains_signature():
    def main(out="default/dir", *, epochs: int = 3, lr: float = 0.1, name: str = "x",
             limit=None, verbose: bool = True):
        return out, epochs, lr, name, limit, verbose

    assert run_script(main, []) == ("default/dir", 3, 0.1, "x", None, True)
    assert run_script(main, ["--out", "o", "--epochs", "7", "--lr", "1e-3", "--name", "y"]) \
        == ("o", 7, 0.001, "y", None, True)
    with pytest.raises(SystemExit):      # only int/float/str defaults become options
        run_script(main, ["--verbose", "0"])


def test_warmup_cosine_ramps_up_then_decays_to_zero():
    opt = torch.optim.SGD(_linear().parameters(), lr=1.0)
    sched = warmup_cosine(opt, 100)       # 5 warmup steps
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert lrs[5] == 1.0 and lrs[52] == pytest.approx(0.5, abs=0.02)
    assert all(a >= b for a, b in zip(lrs[5:], lrs[6:], strict=False)) and lrs[-1] < 0.001


def test_a_plugin_authors_weights_get_their_package_source_and_catalog(tmp_path, monkeypatch,
                                                                      capsys):
    pkg = tmp_path / "site" / "zoo_lin"
    (pkg / "weights").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    catalog = pkg / "catalog.toml"
    catalog.write_text(textwrap.dedent("""
        [models."lin/net"]
        family = "cnn"
        task = "image-classification"
        builder = "torch.nn:Linear"
        kwargs = { in_features = 4, out_features = 3 }
    """))
    model = _linear()
    shipped = ship(model, pkg / "weights" / "net.safetensors", name="lin/net", tag="mine",
                   metrics={"accuracy": 0.5})
    printed = capsys.readouterr().out
    assert "add to zoo_lin/catalog.toml:" in printed and "registry.toml" not in printed
    table = tomllib.loads(shipped.toml)["models"]["lin/net"]["pretrained"]["mine"]
    assert table["source"] == "package:zoo_lin/weights/net.safetensors"
    # pasted into the plugin's catalog, the block loads from the installed package
    catalog.write_text(catalog.read_text() + "\n" + shipped.toml)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("ZOO_CATALOG", str(catalog))
    reset_default()
    try:
        again = zoo.get("lin/net.mine")
    finally:
        reset_default()
    assert torch.equal(again.weight, model.weight)


def test_weights_outside_any_package_get_a_file_source(tmp_path):
    shipped = ship(_linear(), tmp_path / "w.safetensors", name="lin", tag="t",
                   metrics={"acc": 1.0}, echo=False)
    source = tomllib.loads(shipped.toml)["models"]["lin"]["pretrained"]["t"]["source"]
    assert source == f"file:{(tmp_path / 'w.safetensors').resolve()}"
