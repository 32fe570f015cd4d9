"""Compute the ``params`` and ``gflops`` figures of catalog entries; print TOML to paste.

    python scripts/catalog_stats.py                 # every catalog model
    python scripts/catalog_stats.py resnet50 vgg16  # some
    python scripts/catalog_stats.py --device meta   # big conv nets in seconds

``params`` is the number of parameters of the model the catalog builds (its own
kwargs, random weights). ``gflops`` is ``torch.utils.flop_counter.FlopCounterMode``'s
total for one forward pass in eval mode on the model's example input (the family's
``example_input``, else a batch of 1 of the declared ``input``), divided by 1e9 -- the
same figure ``zoo get`` prints. FlopCounterMode counts a multiply-add as 2 FLOPs, so
these numbers are twice the "GMACs" (often also called GFLOPs) that torchvision's and
timm's tables give: resnet50 is 8.18 here, 4.09 in torchvision's docs.

``--device meta`` builds models on PyTorch's ``meta`` device instead: shapes without
data, so vgg19 or efficientnet_b7 cost no memory and almost no time. For convolutional
and linear layers the counts are identical to real tensors (tests/test_catalog_stats.py
checks it); attention may differ, because ``scaled_dot_product_attention`` picks another
kernel on meta tensors than on CPU ones. Models whose example input is not tensors, or
whose forward needs real data (a detector's NMS), are always built on the CPU.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any


def compute(name: str, *, device: str = "cpu") -> dict[str, Any]:
    """Build catalog model ``name`` (no tag) and return ``{"params": int, "gflops": float}``.

    Args:
        name: a catalog name, e.g. ``"resnet50"``.
        device: ``"cpu"`` (real random weights) or ``"meta"`` (fast, no memory; exact
            for conv nets, see the module docstring).
    """
    import torch

    from zoo import build
    from zoo.registry import default_registry

    spec = default_registry().spec(name)
    args = build.example_input(spec)
    if device != "cpu" and not all(isinstance(a, torch.Tensor) for a in args):
        device = "cpu"
    if device != "cpu":
        try:
            with torch.device(device):
                model = build.build(spec)
            summary = build.summarize(model, spec, args=tuple(a.to(device) for a in args))
            return {"params": summary["params"], "gflops": summary["gflops"]}
        except (NotImplementedError, RuntimeError):
            pass  # data-dependent ops (NMS, boolean masks) need real tensors
    summary = build.summarize(build.build(spec), spec, args=args)
    return {"params": summary["params"], "gflops": summary["gflops"]}


def format_gflops(gflops: float) -> float:
    """The rounding the catalog uses: 4 significant digits."""
    return float(f"{gflops:.4g}")


def stats(names: Iterable[str] | None = None, *, device: str = "cpu",
          out=sys.stdout) -> dict[str, dict[str, Any]]:
    """Compute every name's figures (all catalog models when ``names`` is None); print a
    table and the TOML lines; return ``{name: {"params", "gflops"}}``."""
    from zoo.registry import default_registry

    reg = default_registry()
    names = list(names) if names else sorted(s.name for s in reg)
    results = {}
    print(f"{'model':24s} {'params':>14s} {'catalog':>14s} {'gflops':>10s} {'catalog':>10s}",
          file=out)
    for name in names:
        r = compute(name, device=device)
        results[name] = r
        spec = reg.spec(name)
        print(f"{name:24s} {r['params']:>14,d} {spec.params or 0:>14,d} "
              f"{format_gflops(r['gflops']):>10} {spec.gflops or 0:>10}", file=out, flush=True)
    print("\n# TOML lines to paste into each [models.NAME] table:", file=out)
    for name, r in results.items():
        print(f"# {name}\nparams = {r['params']}\ngflops = {format_gflops(r['gflops'])}",
              file=out)
    return results


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="catalog names (default: all)")
    p.add_argument("--device", default="cpu", choices=["cpu", "meta"])
    a = p.parse_args()
    stats(a.names or None, device=a.device)
