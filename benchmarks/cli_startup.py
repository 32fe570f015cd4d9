"""CLI start-up against the floor any plugin-aware listing pays, timm, and (optionally) an
earlier zoo, all measured in one run.

    python benchmarks/cli_startup.py [--runs 9] [--sizes 1000 10000] [--no-timm]
                                     [--before /path/to/old/venv/bin/zoo]

Every figure is the median wall time of whole-process runs. The commands are run
interleaved (one run of each in turn, ``--runs`` times), so a machine that gets busier
half-way slows them all alike, and the ratios compare runs of the same moments.

Baselines:

- the floor: ``python -c "import pluggy, tomllib; importlib.metadata.entry_points(group=
  'zoo')"``, what a listing that finds plugins and reads TOML pays before doing anything;
- ``python -c "import timm; timm.list_models()"``;
- with ``--before ZOO``: that console script (an older zoo, e.g. the branch point installed
  editable into its own venv), run the same way, for before/after ratios;
- for the user catalogs, ``tomllib.load`` alone on the same file, in a process of its own.

Targets (issue 18): ``zoo list``, ``zoo info``, ``zoo recommend`` and ``zoo plugins`` at
most 1.2x the floor and at least 50x faster than timm; with a 10,000-entry user catalog a
warm ``zoo list`` under 0.25 s and the cold first parse at most 1.3x ``tomllib.load``;
the per-1,000-entry cost not growing with the catalog (linear). ``zoo list`` on a
pseudo-terminal is reported as well (against ``python -c pass`` on one).

Subprocesses run without PYTHONDONTWRITEBYTECODE, as users run them: with it, every run
recompiles zoo's sources, which no installed zoo pays.
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
FLOOR = ("import pluggy, tomllib, importlib.metadata\n"
         "importlib.metadata.entry_points(group='zoo')")
TIMM = "import timm; timm.list_models()"
MAX_FLOOR_RATIO = 1.2
MIN_TIMM_RATIO = 50
MAX_WARM_10K = 0.25
MAX_COLD_RATIO = 1.3
LINEAR_SLACK = 1.25     # per-1,000 cost at the bigger size over the smaller still "linear"

# Runs a command on a pseudo-terminal (stdout.isatty() is true in it) and waits for it.
PTY = ("import os, pty, sys\n"
       "def read(fd):\n"
       "    return os.read(fd, 65536)\n"
       "pty.spawn(sys.argv[1:], read)\n")

COMMANDS = {
    "zoo list": ["list"],
    "zoo info resnet50": ["info", "resnet50"],
    "zoo recommend --task image-classification --data-size 800":
        ["recommend", "--task", "image-classification", "--data-size", "800"],
    "zoo plugins": ["plugins"],
}


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONDONTWRITEBYTECODE", "ZOO_CATALOG", "NO_COLOR", "FORCE_COLOR",
                         "ZOO_NO_CACHE")}


def once(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env={**clean_env(), **(env or {})})
    return time.perf_counter() - t


def interleaved(jobs: dict[str, tuple[list[str], dict[str, str]]],
                runs: int) -> dict[str, float]:
    """Median wall time of each job, the jobs taking turns."""
    times: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(runs):
        for key, (cmd, env) in jobs.items():
            times[key].append(once(cmd, env))
    return {k: statistics.median(v) for k, v in times.items()}


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


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--cold-runs", type=int, default=3, help="cold parses per catalog size")
    ap.add_argument("--no-timm", action="store_true", help="skip the slow timm baseline")
    ap.add_argument("--before", metavar="ZOO", help="an earlier zoo console script to compare")
    args = ap.parse_args()
    if not ZOO:
        sys.exit("the zoo console script is not installed (pip install -e .)")
    zoos = {"after": ZOO, **({"before": args.before} if args.before else {})}
    tmp = Path(tempfile.mkdtemp(prefix="zoo-startup-"))
    try:
        report(args, zoos, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def report(args: argparse.Namespace, zoos: dict[str, str], tmp: Path) -> None:
    caches = {side: {"ZOO_CACHE_DIR": str(tmp / f"cache-{side}")} for side in zoos}
    jobs: dict[str, tuple[list[str], dict[str, str]]] = {
        "python -c pass": ([PY, "-c", "pass"], {}),
        "floor": ([PY, "-c", FLOOR], {}),
    }
    for side, zoo in zoos.items():
        for label, argv in COMMANDS.items():
            jobs[f"{label} [{side}]"] = ([zoo, *argv], caches[side])
        jobs[f"zoo list, on a terminal [{side}]"] = ([PY, "-c", PTY, zoo, "list"], caches[side])
    jobs["python -c pass, on a terminal"] = ([PY, "-c", PTY, PY, "-c", "pass"], {})
    for cmd, env in jobs.values():
        once(cmd, env)          # writes bytecode caches, fills the caches
    t = interleaved(jobs, args.runs)
    timm = None
    if not args.no_timm:
        timm = statistics.median(once([PY, "-c", TIMM]) for _ in range(max(1, args.runs // 3)))

    floor = t["floor"]
    rows = [("python -c pass", t["python -c pass"]), ("floor: pluggy + tomllib + entry points",
                                                     floor)]
    rows += [(k, v) for k, v in t.items() if k not in ("python -c pass", "floor")]
    if timm:
        rows.append(("python -c 'import timm; timm.list_models()'", timm))

    # -- user catalogs: warm listing, cold parse against tomllib.load, growth ------------
    warm: dict[str, dict[int, float]] = {side: {} for side in zoos}
    cold: dict[str, dict[int, float]] = {side: {} for side in zoos}
    toml: dict[int, float] = {}
    for n in args.sizes:
        cat = tmp / f"catalog-{n}.toml"
        make_catalog(cat, n)
        load = [PY, "-c", f"import tomllib\ntomllib.load(open({str(cat)!r}, 'rb'))"]
        times: dict[str, list[float]] = {"tomllib.load": [], **{side: [] for side in zoos}}
        # each cold run in a cache directory of its own; past 10,000 entries one is enough
        for r in range(args.cold_runs if n <= 10_000 else 1):
            for side, zoo in zoos.items():
                env = {"ZOO_CATALOG": str(cat), "ZOO_CACHE_DIR": str(tmp / f"cold-{side}-{n}-{r}")}
                times[side].append(once([zoo, "list"], env))
            times["tomllib.load"].append(once(load))
        toml[n] = statistics.median(times["tomllib.load"])
        for side in zoos:
            cold[side][n] = statistics.median(times[side])
        warm_jobs = {side: ([zoo, "list"], {"ZOO_CATALOG": str(cat),
                                              "ZOO_CACHE_DIR": str(tmp / f"cold-{side}-{n}-0")})
                     for side, zoo in zoos.items()}
        for side, secs in interleaved(warm_jobs, args.runs if n <= 10_000 else 3).items():
            warm[side][n] = secs
        rows.append((f"tomllib.load, {n:,}-entry catalog", toml[n]))
        for side in zoos:
            rows.append((f"zoo list, {n:,}-entry user catalog, cold (parses) [{side}]",
                         cold[side][n]))
            rows.append((f"zoo list, {n:,}-entry user catalog [{side}]", warm[side][n]))

    width = max(len(r[0]) for r in rows)
    print(f"{'command':<{width}}  median s  x floor")
    for name, secs in rows:
        print(f"{name:<{width}}  {secs:8.3f}  {secs / floor:6.2f}x")
    print()

    # -- the target lines ----------------------------------------------------------------
    for label in COMMANDS:
        for side in zoos:
            secs = t[f"{label} [{side}]"]
            line = (f"[{side}] {label}: {secs:.3f} s = {secs / floor:.2f}x the floor "
                    f"(target <= {MAX_FLOOR_RATIO}x: {verdict(secs / floor <= MAX_FLOOR_RATIO)})")
            if timm:
                line += (f"; timm list_models is {timm / secs:.0f}x slower "
                         f"(target >= {MIN_TIMM_RATIO}x: {verdict(timm / secs >= MIN_TIMM_RATIO)})")
            print(line)
        if "before" in zoos:
            print(f"  after / before: {t[f'{label} [after]'] / t[f'{label} [before]']:.2f}x")
    for side in zoos:
        term = t[f"zoo list, on a terminal [{side}]"]
        print(f"[{side}] zoo list on a terminal: {term / t['python -c pass, on a terminal']:.1f}x"
              " python -c pass on one")
    for n in args.sizes:
        for side in zoos:
            line = (f"[{side}] {n:,}-entry catalog: warm zoo list {warm[side][n]:.3f} s; cold "
                    f"first parse {cold[side][n] / toml[n]:.2f}x tomllib.load alone")
            if n == 10_000:
                line += (f" (targets <= {MAX_WARM_10K} s: "
                         f"{verdict(warm[side][n] <= MAX_WARM_10K)}; <= {MAX_COLD_RATIO}x: "
                         f"{verdict(cold[side][n] / toml[n] <= MAX_COLD_RATIO)})")
            print(line)
    sizes = sorted(args.sizes)
    if len(sizes) >= 2:
        for side in zoos:
            for what, series in (("warm zoo list", warm[side]), ("cold parse", cold[side])):
                base = t[f"zoo list [{side}]"] if what == "warm zoo list" else 0.0
                points = [(0, base)] + [(n, series[n]) for n in sizes]
                (n1, t1), (n2, t2) = points[-2], points[-1]
                before = (t1 - points[0][1]) / n1 if n1 else 0.0
                last = (t2 - t1) / (n2 - n1)
                ok = before > 0 and last <= LINEAR_SLACK * before
                print(f"[{side}] growth, {what}: {last * 1e6:.2f} ms / 1,000 entries over "
                      f"{n1:,} -> {n2:,} vs {before * 1e6:.2f} up to {n1:,} "
                      f"(linear: {verdict(ok)})")


if __name__ == "__main__":
    main()
