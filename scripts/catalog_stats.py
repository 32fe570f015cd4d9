"""Compute the ``params`` and ``gflops`` figures of catalog entries; print TOML to paste.

    python scripts/catalog_stats.py                 # every catalog model and trained model
    python scripts/catalog_stats.py resnet50 vgg16  # some (with their trained models)
    python scripts/catalog_stats.py transformer.dates  # one trained model
    python scripts/catalog_stats.py --device meta   # big conv nets in seconds

``params`` is the number of parameters of the model the catalog builds (its own
kwargs, random weights). A trained model (``NAME.TAG``) whose tag's ``kwargs`` change
the architecture's (transformer.dates is a 2-layer, 128-wide transformer, not the 63 M
default) is built with those kwargs, as its builder builds it for its weights
(``zoo.loading.build.building_for``: a trained Faster R-CNN's frozen batch norms hold
buffers, not parameters) but without loading them, and measured the same way; its
figures go into its ``[models.NAME.pretrained.TAG]`` table, where the listing shows them
instead of the architecture's. A tag built exactly like its architecture needs no
figures of its own (zoo falls back to the architecture's).

``gflops`` is ``torch.utils.flop_counter.FlopCounterMode``'s total for one forward
pass in eval mode on the model's example input (the family's ``example_input``, else a
batch of 1 of the declared ``input``), divided by 1e9 -- the same figure ``zoo get``
prints (``zoo.loading.build.summarize``). FlopCounterMode counts a multiply-add as 2
FLOPs, so these numbers are twice the "GMACs" (often also called GFLOPs) that
torchvision's and timm's tables give: resnet50 is 8.18 here, 4.09 in torchvision's docs
(``zoo.registry.spec.GFLOPS_CONVENTION`` says so wherever zoo shows the figure). Kernels
the counter cannot see (fused attention, nn.MultiheadAttention's fast path) are off while
counting.

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


def compute(name: str, tag: str | None = None, *, device: str = "cpu") -> dict[str, Any]:
    """Build catalog model ``name`` (or its trained model ``tag``: the tag's kwargs, random
    weights) and return ``{"params": int, "gflops": float}``.

    Args:
        name: a catalog name, e.g. ``"resnet50"``.
        tag: a pretrained tag of it, e.g. ``"dates"``; its weights are not loaded.
        device: ``"cpu"`` (real random weights) or ``"meta"`` (fast, no memory; exact
            for conv nets, see the module docstring).
    """
    import torch

    from zoo.loading import build
    from zoo.registry import default_registry
    from zoo.registry.spec import thaw

    spec = default_registry().spec(name)
    # The tag's kwargs as overrides of an untagged build: the same merged kwargs as
    # ``zoo get NAME.TAG`` (zoo.loading.build.merged_kwargs), without loading the weights.
    kwargs = thaw(spec.pretrained[tag].kwargs) if tag else {}
    # ... and built as for its weights: torchvision's trained Faster R-CNN freezes its
    # batch norms (buffers, not parameters), transformers models skip random init
    source = spec.pretrained[tag].source if tag else None
    args = build.example_input(spec, tag)
    if device != "cpu" and not all(isinstance(a, torch.Tensor) for a in args):
        device = "cpu"
    if device != "cpu":
        try:
            with torch.device(device), build.building_for(source):
                model = build.build(spec, **kwargs)
            summary = build.summarize(model, spec, tag,
                                      args=tuple(a.to(device) for a in args))
            return {"params": summary["params"], "gflops": summary["gflops"]}
        except (NotImplementedError, RuntimeError):
            pass  # data-dependent ops (NMS, boolean masks) need real tensors
    with build.building_for(source):
        model = build.build(spec, **kwargs)
    summary = build.summarize(model, spec, tag, args=args)
    return {"params": summary["params"], "gflops": summary["gflops"]}


def sized_tags(spec) -> list[str]:
    """The tags of ``spec`` that may build a model of another size than the architecture:
    their kwargs set a value the architecture's kwargs do not (num_classes=1000 on a
    torchvision model whose default it is counts too: only building tells), they
    override the input, or they state figures of their own."""
    base = dict(spec.kwargs)
    return [tag for tag, pre in spec.pretrained.items()
            if pre.input is not None or pre.params is not None or pre.gflops is not None
            or any(k not in base or base[k] != v for k, v in pre.kwargs.items())]


def same_size(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Figures equal as the catalog test compares them: params exactly, GFLOPs within 1 %."""
    return a["params"] == b["params"] and abs(a["gflops"] - b["gflops"]) <= 0.01 * abs(b["gflops"])


def format_gflops(gflops: float) -> float:
    """The rounding the catalog uses: 4 significant digits."""
    return float(f"{gflops:.4g}")


def stats(names: Iterable[str] | None = None, *, device: str = "cpu", tags: bool = True,
          out=sys.stdout) -> dict[str, dict[str, Any]]:
    """Compute every name's figures (all catalog models when ``names`` is None) and, with
    ``tags``, those of its trained models whose kwargs may change the size; ``NAME.TAG``
    names one trained model. Print a table and the TOML lines; return
    ``{"NAME" or "NAME.TAG": {"params", "gflops"}}``."""
    from zoo.registry import default_registry
    from zoo.registry.spec import split_name_tag

    reg = default_registry()
    wanted = list(names) if names else sorted(s.name for s in reg)
    jobs: list[tuple[str, str | None]] = []
    for text in wanted:
        name, tag = split_name_tag(text)
        if tag is not None:
            jobs += [(name, None), (name, tag)]   # the tag is compared with its architecture
        else:
            jobs.append((name, None))
            if tags:
                jobs += [(name, t) for t in sized_tags(reg.spec(name))]
    results: dict[str, dict[str, Any]] = {}
    print(f"{'model':32s} {'params':>14s} {'catalog':>14s} {'gflops':>10s} {'catalog':>10s}",
          file=out)
    for name, tag in dict.fromkeys(jobs):
        key = f"{name}.{tag}" if tag else name
        r = results[key] = compute(name, tag, device=device)
        spec = reg.spec(name)
        if tag:   # what the catalog shows for the tag: its own figures, else the model's
            stated = (spec.params_for(tag) or 0, spec.gflops_for(tag) or 0)
        else:
            stated = (spec.params or 0, spec.gflops or 0)
        print(f"{key:32s} {r['params']:>14,d} {stated[0]:>14,d} "
              f"{format_gflops(r['gflops']):>10} {stated[1]:>10}", file=out, flush=True)
    print("\n# TOML lines to paste into each [models.NAME] table "
          "(and [models.NAME.pretrained.TAG] table):", file=out)
    for key, r in results.items():
        name, tag = split_name_tag(key)
        if tag and name in results and same_size(r, results[name]):
            print(f"# {key}: same size as {name}; needs no figures of its own", file=out)
            continue
        table = f"models.{name}.pretrained.{tag}" if tag else f"models.{name}"
        print(f"# [{table}]\nparams = {r['params']}\ngflops = {format_gflops(r['gflops'])}",
              file=out)
    return results


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="catalog NAME or NAME.TAG (default: all)")
    p.add_argument("--device", default="cpu", choices=["cpu", "meta"])
    p.add_argument("--no-tags", action="store_true",
                   help="architectures only, not their trained models")
    a = p.parse_args()
    stats(a.names or None, device=a.device, tags=not a.no_tags)
