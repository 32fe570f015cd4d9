"""The catalog's ``params`` and ``gflops`` figures are what scripts/catalog_stats.py computes.

Every entry of every family that states them is checked: parameters exactly, GFLOPs
within 1 %. Entries under 30 M parameters are built for real; the big ones on PyTorch's
meta device (shapes, no data), which one test checks gives the same figures for conv nets.
"""

from __future__ import annotations

import io

import pytest
import torch
from helpers import load_script

from zoo.registry import default_registry

_REG = default_registry()
STATED = sorted(s.name for s in _REG if s.params is not None or s.gflops is not None)
SMALL = [n for n in STATED if (_REG.spec(n).params or 0) < 30_000_000]
BIG = [n for n in STATED if n not in SMALL]


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared runner more threads spin and run slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _check(name: str, got: dict) -> None:
    spec = _REG.spec(name)
    if spec.params is not None:
        assert got["params"] == spec.params, f"{name}: params {got['params']} != {spec.params}"
    if spec.gflops is not None:
        assert got["gflops"] == pytest.approx(spec.gflops, rel=0.01), \
            f"{name}: gflops {got['gflops']:.4g} != catalog {spec.gflops}"


# Entries whose stored figures are known to lag the script (none today). Paste the
# script's lines into registry.toml rather than adding names here.
OFF_TODAY: set[str] = set()


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(reason="catalog figure not yet recomputed by "
                                            "its family's owner")) if n in OFF_TODAY else n
    for n in SMALL])
def test_small_entry_figures_match(name):
    _check(name, load_script("catalog_stats").compute(name))


# Big conv nets whose GFLOPs are recomputed too (a meta forward of each EfficientNet
# still takes seconds); the other big entries have their parameters checked.
BIG_GFLOPS = ("vgg19", "vgg19_bn", "resnet152", "efficientnet_b7", "alexnet")


@pytest.mark.slow
def test_big_entry_figures_match():
    """vgg19, efficientnet_b7, resnet152 ...: each built once on the meta device. Conv nets'
    GFLOPs are exact there (see below); attention models' are not, so for those only the
    parameter count is checked."""
    from zoo import build

    assert {"vgg19", "efficientnet_b7", "resnet152"} <= set(BIG)
    stats = load_script("catalog_stats")
    for name in BIG:
        spec = _REG.spec(name)
        if name in BIG_GFLOPS:
            _check(name, stats.compute(name, device="meta"))
            continue
        with torch.device("meta"):
            model = build.build(spec)
        assert sum(p.numel() for p in model.parameters()) == spec.params, name


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "yolo"])
def test_meta_device_counts_equal_real_tensors(name):
    stats = load_script("catalog_stats")
    assert stats.compute(name, device="meta") == stats.compute(name, device="cpu")


def test_stats_prints_a_table_and_toml_lines():
    out = io.StringIO()
    result = load_script("catalog_stats").stats(["lenet5"], out=out)
    text = out.getvalue()
    assert result["lenet5"]["params"] == 61706
    assert "params = 61706" in text and "gflops = 0.000833" in text
    assert text.splitlines()[0].split()[:2] == ["model", "params"]
