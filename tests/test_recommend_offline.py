"""`zoo recommend` offline: only weights on this machine, found without torch
(:mod:`zoo.loading.local`), for each source scheme."""

from __future__ import annotations

from pathlib import Path

from zoo.recommend import recommend


def test_offline_picks_run_offline(monkeypatch, tmp_path):
    from zoo.loading.local import on_machine
    from zoo.registry import default_registry

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    reg = default_registry()
    recs = recommend("image-classification", data_size=800, offline=True, top=None)
    assert recs and all(r.runs_offline for r in recs)
    for r in recs:
        spec, _, tag = r.name.partition(".")
        if tag:
            pre = reg.spec(spec).pretrained[tag]
            assert on_machine(pre.source, pre.sha256), r.name
    # ImageNet weights would download: their models are offered from random weights
    names = {r.name for r in recs}
    assert "resnet50.imagenet" not in names and "resnet50" in names
    assert any("'resnet50.imagenet' weights would download" in x
               for r in recs if r.name == "resnet50" for x in r.reasons)
    # the same from the environment alone
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    assert [r.name for r in recommend("image-classification", data_size=800, top=None)] == \
        [r.name for r in recs]
    # once torchvision's file is in torch.hub's cache, those weights count as local
    ckpt = tmp_path / "torch" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "resnet50-11ad3fa6.pth").write_bytes(b"x")
    names = {r.name for r in recommend("image-classification", data_size=800, top=None)}
    assert "resnet50.imagenet" in names and "resnet50" not in names


def test_weights_on_machine_for_each_scheme(tmp_path, monkeypatch):
    from zoo.loading.local import on_machine

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    assert on_machine("package:zoo/trained/lenet5-digits.safetensors")
    assert not on_machine("package:zoo/trained/nope.safetensors")
    assert not on_machine("package:no_such_package_zz/w.safetensors")
    w = tmp_path / "w.safetensors"
    assert not on_machine(f"file:{w}")
    w.write_bytes(b"x")
    assert on_machine(f"file:{w}")
    snap = tmp_path / "hf" / "models--timm--resnet18.a1_in1k" / "snapshots" / "abc"
    assert not on_machine("timm:resnet18.a1_in1k")
    snap.mkdir(parents=True)
    (snap / "model.safetensors").write_bytes(b"x")
    assert on_machine("timm:resnet18.a1_in1k")
    repo = tmp_path / "hf" / "models--me--net"
    (repo / "snapshots" / "c0ffee").mkdir(parents=True)
    (repo / "snapshots" / "c0ffee" / "weights.bin").write_bytes(b"x")
    (repo / "refs").mkdir()
    (repo / "refs" / "v1").write_text("c0ffee")
    assert on_machine("hf-hub:me/net@v1/weights.bin")
    assert not on_machine("hf-hub:me/net/model.safetensors")
    assert not on_machine("myscheme:whatever")     # a plugin's scheme: not known, not local


def test_torchvision_file_names_match_torchvision():
    """The checkpoint names read from torchvision's sources are the real enums' URLs."""
    from torchvision.models import get_weight

    from zoo.loading.local import _torchvision_file
    from zoo.registry import default_registry

    sources = {pre.source.partition(":")[2] for s in default_registry()
               for pre in s.pretrained.values() if pre.source.startswith("torchvision:")}
    assert len(sources) > 10
    for name in sorted(sources):
        assert _torchvision_file(name) == Path(get_weight(name).url).name, name
