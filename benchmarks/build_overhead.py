"""Build overhead: `zoo.get(NAME)` against the underlying library's own constructor.

    python benchmarks/build_overhead.py [--reps 7] [--models resnet50 vit_b_16 bert_base gcn]

In one process, after warming up every import (and one build of each, so lazy module
imports and first-call allocations are paid before timing), the two ways of building
each model alternate (which goes first flips each repetition). The kwargs of the direct
constructor are read from the catalog with ``zoo.info(name)``, so both build the same
architecture. Reported: medians, the zoo/direct ratio (target <= 1.05x) and the absolute
difference, plus where zoo's own per-call cost goes (resolve, kwargs, builder import).

Not part of the test suite. Random initialisation dominates the big models; the ratio
of the tiny GCN shows zoo's fixed per-call cost most.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

TARGET = 1.05


def direct_builders() -> dict[str, Callable[[dict[str, Any]], Any]]:
    """The library's own constructor per catalog name, taking the catalog's kwargs."""

    def resnet50(kw):
        import torchvision.models

        return torchvision.models.resnet50(**kw)

    def vit_b_16(kw):
        import torchvision.models

        return torchvision.models.vit_b_16(**kw)

    def bert_base(kw):
        from transformers import BertConfig, BertForSequenceClassification

        kw = dict(kw)
        num_labels = kw.pop("num_classes", 2)
        return BertForSequenceClassification(BertConfig(num_labels=num_labels, **kw))

    def gcn(kw):
        from torch_geometric.nn.models import GCN

        return GCN(**kw)

    return {"resnet50": resnet50, "vit_b_16": vit_b_16, "bert_base": bert_base, "gcn": gcn}


def timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    t = time.perf_counter()
    model = fn()
    dt = time.perf_counter() - t
    del model
    return dt


def zoo_parts(name: str, reps: int = 2000) -> dict[str, float]:
    """Microseconds per call of what zoo.get does besides calling the builder."""
    from zoo import api
    from zoo.loading import build
    from zoo.registry import default_registry

    reg = default_registry()
    spec, tag = reg.resolve(name)
    out = {}
    for label, fn in (
        ("default_registry", default_registry),
        ("_looks_like_dir", lambda: api._looks_like_dir(name)),
        ("resolve", lambda: reg.resolve(name)),
        ("merged_kwargs", lambda: build.merged_kwargs(spec, tag, {})),
        ("builder_of", lambda: build.builder_of(spec)),
    ):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        out[label] = (time.perf_counter() - t) / reps * 1e6
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7, help="builds of each kind per model")
    ap.add_argument("--small-reps", type=int, default=200,
                    help="builds of each kind for models that build in under 10 ms")
    ap.add_argument("--models", nargs="*", default=["resnet50", "vit_b_16", "bert_base", "gcn"])
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 1)))
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    import zoo

    direct = direct_builders()
    plans = []
    t0 = time.perf_counter()
    for name in args.models:
        kwargs = zoo.info(name)["kwargs"]

        def make_direct(f=direct[name], kw=kwargs):
            return f(kw)

        def make_zoo(n=name):
            return zoo.get(n)

        # Warm-up: imports, lazy modules, allocator; also tells how many reps fit.
        timed(make_zoo)
        first = timed(make_direct)
        reps = args.small_reps if first < 0.01 else args.reps
        plans.append((name, make_zoo, make_direct, reps))
    warm_s = time.perf_counter() - t0

    rows = []
    for name, make_zoo, make_direct, reps in plans:
        # A third column builds the direct way again: its ratio to the first direct
        # column is the noise floor (an A/A test) for this model on this machine now.
        kinds = [("zoo", make_zoo), ("direct", make_direct), ("again", make_direct)]
        times: dict[str, list[float]] = {k: [] for k, _ in kinds}
        for r in range(reps):
            order = kinds[r % 3:] + kinds[:r % 3]      # rotate who goes first
            for kind, fn in order:
                times[kind].append(timed(fn))
        mz, md, ma = (statistics.median(times[k]) for k in ("zoo", "direct", "again"))
        rows.append((name, reps, mz, md, ma, zoo_parts(name)))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
          f"imports + warm-up builds {warm_s:.1f} s\n")
    print(f"{'model':<10} {'reps':>4}  {'zoo.get':>10}  {'direct':>10}  {'ratio':>6}  "
          f"{'zoo - direct':>12}  {'A/A':>6}  verdict")
    for name, reps, mz, md, ma, _ in rows:
        ratio = mz / md
        ok = "met" if ratio <= TARGET else "MISSED"
        print(f"{name:<10} {reps:>4}  {fmt(mz):>10}  {fmt(md):>10}  {ratio:5.3f}x  "
              f"{(mz - md) * 1e3:+9.3f} ms  {ma / md:5.3f}x  {ok} (target <= {TARGET}x)")
    print("(A/A: the direct constructor timed twice in the same loop; how far it strays "
          "from 1.000x is the noise)")
    print("\nzoo's own work per zoo.get call (microseconds; the rest is the builder):")
    for name, *_, parts in rows:
        print(f"  {name:<10} " + "  ".join(f"{k} {v:7.1f}" for k, v in parts.items()))


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.3f} s"


if __name__ == "__main__":
    main()
