"""CLI start-up: `zoo list`, `zoo info`, `zoo recommend` against timm, torchvision and bare Python.

    python benchmarks/cli_startup.py [--runs 7] [--sizes 1000 10000] [--no-timm]

Every figure is the median wall time of whole-process runs measured in this run, so the
ratios hold on a noisy machine. Targets (issues [A], [G]): >= 30x faster than
`import timm; timm.list_models()`, <= 6x bare `python -c pass`, and under 0.5 s with a
generated 10,000-entry user catalog (its one-time parse is cached; the first run is
reported separately as "cold"). `zoo list` is also timed on a terminal (a pseudo-terminal,
against the same wrapper around `python -c pass`), because that is where people run it.

Subprocesses run without PYTHONDONTWRITEBYTECODE (as users do): with it, every run
recompiles zoo's sources (~60 ms), which no installed zoo pays.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
ZOO = str(Path(PY).with_name("zoo")) if Path(PY).with_name("zoo").exists() else shutil.which("zoo")


# Runs a command on a pseudo-terminal (stdout.isatty() is true in it) and waits for it.
PTY = ("import os, pty, sys\n"
       "def read(fd):\n"
       "    return os.read(fd, 65536)\n"
       "pty.spawn(sys.argv[1:], read)\n")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONDONTWRITEBYTECODE", "ZOO_CATALOG", "NO_COLOR", "FORCE_COLOR")}


def wall(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       env={**clean_env(), **(env or {})})
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def make_catalog(path: Path, n: int) -> None:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(
                f'[models.user-net-{i}]\nfamily = "cnn"\ntask = "image-classification"\n'
                f'builder = "zoo.plugins.cnn.lenet:lenet5"\n'
                f'kwargs = {{ num_classes = {i % 100 + 2} }}\n'
                f'description = "generated model {i}"\nyear = 2020\nlicense = "mit"\n'
                f'params = {1000 + i}\n'
                f'input = {{ size = [1, 32, 32], mean = [0.5], std = [0.5] }}\n'
                f'tags = ["generated", "small"]\n\n[models.user-net-{i}.pretrained.gen]\n'
                f'source = "file:weights/{i}.safetensors"\nmetrics = {{ acc = 0.9 }}\n\n')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--no-timm", action="store_true", help="skip the slow timm baseline")
    args = ap.parse_args()
    if not ZOO:
        sys.exit("the zoo console script is not installed (pip install -e .)")
    rows: list[tuple[str, float]] = []
    recommend = [ZOO, "recommend", "--task", "image-classification", "--data-size", "800"]
    for warm in ([ZOO, "list"], [ZOO, "info", "resnet50"], recommend):
        wall(warm, 1)        # writes bytecode caches, warms the parse cache
    bare = wall([PY, "-c", "pass"], args.runs)
    rows.append(("python -c pass", bare))
    zlist = wall([ZOO, "list"], args.runs)
    zinfo = wall([ZOO, "info", "resnet50"], args.runs)
    zrec = wall(recommend, args.runs)
    rows += [("zoo list", zlist), ("zoo info resnet50", zinfo),
             ("zoo recommend --task image-classification --data-size 800", zrec)]
    tty_bare = wall([PY, "-c", PTY, PY, "-c", "pass"], args.runs)
    tty_list = wall([PY, "-c", PTY, ZOO, "list"], args.runs)
    rows += [("python -c pass, on a terminal", tty_bare), ("zoo list, on a terminal", tty_list)]
    tv = wall([PY, "-c", "import torchvision.models as m; m.list_models()"],
              max(1, args.runs // 2))
    rows.append(("python -c 'import torchvision.models as m; m.list_models()'", tv))
    timm = None
    if not args.no_timm:
        timm = wall([PY, "-c", "import timm; timm.list_models()"], max(1, args.runs // 3))
        rows.append(("python -c 'import timm; timm.list_models()'", timm))
    with tempfile.TemporaryDirectory() as tmp:
        env = {"ZOO_CACHE_DIR": str(Path(tmp) / "cache")}
        for n in args.sizes:
            cat = Path(tmp) / f"cat{n}.toml"
            make_catalog(cat, n)
            e = {**env, "ZOO_CATALOG": str(cat)}
            cold = wall([ZOO, "list"], 1, e)
            rows.append((f"zoo list, {n:,}-entry user catalog (cold, parses)", cold))
            rows.append((f"zoo list, {n:,}-entry user catalog", wall([ZOO, "list"], args.runs, e)))
            rows.append((f"zoo info resnet50, {n:,}-entry user catalog",
                         wall([ZOO, "info", "resnet50"], args.runs, e)))
    width = max(len(r[0]) for r in rows)
    print(f"{'command':<{width}}  median s  x bare python")
    for name, t in rows:
        print(f"{name:<{width}}  {t:8.3f}  {t / bare:6.1f}x")
    print()
    print(f"zoo list vs bare python:  {zlist / bare:.1f}x   (target <= 6x)")
    print(f"zoo info vs bare python:  {zinfo / bare:.1f}x   (target <= 6x)")
    print(f"zoo recommend vs bare python:  {zrec / bare:.1f}x   (target <= 6x)")
    print(f"zoo list on a terminal vs python -c pass on one:  {tty_list / tty_bare:.1f}x   "
          "(target <= 6x)")
    print(f"torchvision list_models vs zoo list: {tv / zlist:.0f}x faster")
    if timm:
        print(f"timm list_models vs zoo list: {timm / zlist:.0f}x faster  (target >= 30x)")
        print(f"timm list_models vs zoo info: {timm / zinfo:.0f}x faster  (target >= 30x)")
        print(f"timm list_models vs zoo recommend: {timm / zrec:.0f}x faster  (target >= 30x)")
    for name, t in rows:
        if "10,000-entry" in name and "cold" not in name:
            print(f"{name}: {t:.3f} s  (target < 0.5 s)")


if __name__ == "__main__":
    main()
