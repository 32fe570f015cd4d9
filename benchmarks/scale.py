"""Scale: `zoo list` and `zoo info resnet50` with big user catalogs and many plugins.

    python benchmarks/scale.py [--runs 5] [--sizes 1000 10000 100000] [--plugins 50]
                               [--plugin-install pip|dist-info]

Every figure is the median wall time of whole-process runs of the console script next to
``sys.executable``, with stdout sent to /dev/null, measured in this run next to bare
``python -c pass``. Each configuration gets its own ``ZOO_CACHE_DIR`` (a temp dir):

- a generated user catalog (``ZOO_CATALOG``) of N entries: the first ``zoo list`` parses
  and caches it (reported as "cold"); the warm runs read the cache, keyed by the file's
  path, size, mtime, ctime and inode;
- N generated plugin distributions (entry points in group ``zoo``, each adding a few
  models with ``registry.add_model``) installed into one temp dir put on ``PYTHONPATH``.

Targets (issue [G]): a 10,000-entry catalog under 0.5 s, and time growing linearly with
the catalog or better (issue 18's tighter targets, 0.25 s and the cold parse against
``tomllib.load``, are measured by cli_startup.py). Not part of the test suite; the
100,000-entry cold parse takes tens of seconds and runs once.
"""

from __future__ import annotations

import argparse
import json
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
MODELS_PER_PLUGIN = 3
TARGET_10K = 0.5
#: Slope growth (per-1,000 cost at the bigger size over that at the smaller) still read as
#: linear: whole-process timings on a shared machine wobble by this much.
LINEAR_SLACK = 1.25


def base_env() -> dict[str, str]:
    """The caller's environment without zoo's own variables, so runs start alike, and
    without PYTHONDONTWRITEBYTECODE, which would recompile zoo's sources on every run."""
    return {k: v for k, v in os.environ.items()
            if (not k.startswith("ZOO_") or k in ("ZOO_NO_CACHE",))
            and k != "PYTHONDONTWRITEBYTECODE"}


def run(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env=env)
    return time.perf_counter() - t


def median_wall(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    return statistics.median(run(cmd, env) for _ in range(runs))


# the same generated entries as cli_startup.py, so the two scripts' figures compare
sys.path.insert(0, str(Path(__file__).parent))
from cli_startup import make_catalog  # noqa: E402

PLUGIN_MODULE = '''"""Generated benchmark plugin {k}."""

import zoo


@zoo.hookimpl
def zoo_register_models(registry):
    for i in range({m}):
        registry.add_model(
            name=f"benchplug{k}-net{{i}}", family="cnn", task="image-classification",
            builder="zoo.plugins.cnn.lenet:lenet5", kwargs={{"num_classes": 10}},
            description=f"generated plugin model {{i}}", license="mit", params=61706,
            input={{"size": [1, 32, 32], "mean": [0.5], "std": [0.5]}}, tags=["generated"])
'''

PYPROJECT = '''[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "zoo-benchplug{k}"
version = "0.1.0"

[project.entry-points.zoo]
benchplug{k} = "zoo_benchplug{k}"

[tool.setuptools]
py-modules = ["zoo_benchplug{k}"]
'''


def make_plugins(root: Path, n: int, how: str) -> Path:
    """Create ``n`` tiny plugin distributions and install them into ``root/site``."""
    site = root / "site"
    site.mkdir(parents=True)
    if how == "pip":
        srcs = []
        for k in range(n):
            src = root / "src" / f"benchplug{k}"
            src.mkdir(parents=True)
            (src / "pyproject.toml").write_text(PYPROJECT.format(k=k))
            (src / f"zoo_benchplug{k}.py").write_text(
                PLUGIN_MODULE.format(k=k, m=MODELS_PER_PLUGIN))
            srcs.append(str(src))
        subprocess.run([PY, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--root-user-action=ignore", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", str(site), *srcs], check=True,
                       stdout=subprocess.DEVNULL)
        return site
    # What pip leaves behind, written directly: the module and a .dist-info folder.
    for k in range(n):
        (site / f"zoo_benchplug{k}.py").write_text(PLUGIN_MODULE.format(k=k, m=MODELS_PER_PLUGIN))
        info = site / f"zoo_benchplug{k}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: zoo-benchplug{k}\nVersion: 0.1.0\n")
        (info / "entry_points.txt").write_text(f"[zoo]\nbenchplug{k} = zoo_benchplug{k}\n")
        (info / "top_level.txt").write_text(f"zoo_benchplug{k}\n")
        (info / "RECORD").write_text("")
    return site


def json_names(env: dict[str, str]) -> list[str]:
    out = subprocess.run([ZOO, "list", "--json"], capture_output=True, text=True, check=True,
                         env=env).stdout
    return [row["name"] for row in json.loads(out)]


COMMANDS = {
    "zoo list": ["list"],
    "zoo list --json": ["list", "--json"],
    "zoo info resnet50": ["info", "resnet50"],
}


def measure(env: dict[str, str], runs: int) -> dict[str, float]:
    return {label: median_wall([ZOO, *args], runs, env) for label, args in COMMANDS.items()}


def growth_verdict(points: list[tuple[int, float]]) -> str:
    """Linear or better: the cost per 1,000 entries over the last span is at most the
    average cost per 1,000 up to the size before it (with some slack for noise)."""
    if len(points) < 3:
        return "growth: need two sizes above the first point"
    (n0, t0), (n1, t1), (n2, t2) = points[0], points[-2], points[-1]
    if t1 - t0 < 0.03:
        return f"growth: the cost up to {n1:,} entries is below the noise; cannot tell"
    before = (t1 - t0) / (n1 - n0)
    last = (t2 - t1) / (n2 - n1)
    verdict = "linear or better" if last <= LINEAR_SLACK * before else "worse than linear"
    return (f"growth: {last * 1e6:.2f} ms / 1,000 over {n1:,} -> {n2:,} vs "
            f"{before * 1e6:.2f} before ({last / before:.2f}x) -> {verdict}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="warm runs per figure (median)")
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000])
    ap.add_argument("--plugins", type=int, default=50, help="0 skips the plugin runs")
    ap.add_argument("--plugin-install", choices=("pip", "dist-info"), default="pip",
                    help="install the generated plugins with pip, or write their "
                         ".dist-info folders directly (same result, much faster)")
    args = ap.parse_args(argv)
    if not ZOO:
        sys.exit("the zoo console script is not installed (pip install -e .)")
    sizes = sorted(args.sizes)
    env0 = base_env()
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="zoo-scale-") as tmp_s:
        tmp = Path(tmp_s)
        env = {**env0, "ZOO_CACHE_DIR": str(tmp / "cache0")}
        run([ZOO, "list"], env)     # fills the built-in catalog's cache
        bare = median_wall([PY, "-c", "pass"], args.runs, env0)
        rows.append(("python -c pass", bare))
        base = measure(env, args.runs)
        builtin = len(json_names(env))
        rows += [(f"{label} (built-in catalog, {builtin} models)", t) for label, t in base.items()]

        per_size: dict[int, dict[str, float]] = {}
        for n in sizes:
            cat = tmp / f"catalog-{n}.toml"
            make_catalog(cat, n)
            env = {**env0, "ZOO_CACHE_DIR": str(tmp / f"cache{n}"), "ZOO_CATALOG": str(cat)}
            cold = run([ZOO, "list"], env)
            # The 100,000-entry runs take seconds each: fewer of them.
            runs = args.runs if n <= 10_000 else max(3, args.runs // 2)
            warm = measure(env, runs)
            names = json_names(env)
            if len(names) != builtin + n:
                sys.exit(f"{n}-entry catalog: zoo list --json listed {len(names)} models, "
                         f"expected {builtin + n}")
            per_size[n] = {"cold": cold, **warm}
            rows.append((f"zoo list, {n:,}-entry user catalog (cold: parse + cache)", cold))
            rows += [(f"{label}, {n:,}-entry user catalog", t) for label, t in warm.items()]

        plug: dict[str, float] = {}
        install_s = 0.0
        if args.plugins:
            t = time.perf_counter()
            site = make_plugins(tmp / "plugins", args.plugins, args.plugin_install)
            install_s = time.perf_counter() - t
            pp = os.pathsep.join(p for p in (str(site), env0.get("PYTHONPATH", "")) if p)
            env = {**env0, "ZOO_CACHE_DIR": str(tmp / "cache-plugins"), "PYTHONPATH": pp}
            run([ZOO, "list"], env)
            plug = measure(env, args.runs)
            got = sum(n.startswith("benchplug") for n in json_names(env))
            if got != args.plugins * MODELS_PER_PLUGIN:
                sys.exit(f"{args.plugins} plugins: zoo list --json listed {got} of their "
                         f"{args.plugins * MODELS_PER_PLUGIN} models")
            rows += [(f"{label}, {args.plugins} plugins x {MODELS_PER_PLUGIN} models", t)
                     for label, t in plug.items()]

    width = max(len(r[0]) for r in rows)
    print(f"{'command':<{width}}  median s  x bare python")
    for name, t in rows:
        print(f"{name:<{width}}  {t:8.3f}  {t / bare:6.1f}x")

    print("\ngrowth (ms per 1,000 catalog entries between sizes):")
    for label in COMMANDS:
        points = [(0, base[label])] + [(n, per_size[n][label]) for n in sizes]
        for (n1, t1), (n2, t2) in zip(points, points[1:], strict=False):
            print(f"  {label:<18} {n1:>7,} -> {n2:>7,}: "
                  f"{(t2 - t1) / ((n2 - n1) / 1000) * 1000:7.2f} ms / 1,000")
        print(f"  {label:<18} {growth_verdict(points)}")
    if len(sizes) >= 2:
        cold = [(n, per_size[n]["cold"]) for n in sizes]
        for (n1, t1), (n2, t2) in zip(cold, cold[1:], strict=False):
            print(f"  {'cold parse':<18} {n1:>7,} -> {n2:>7,}: "
                  f"{(t2 - t1) / ((n2 - n1) / 1000) * 1000:7.2f} ms / 1,000")
        print(f"  {'cold parse':<18} {growth_verdict(cold)}")

    print()
    if 10_000 in per_size:
        for label in COMMANDS:
            t = per_size[10_000][label]
            ok = "met" if t < TARGET_10K else "MISSED"
            print(f"{label}, 10,000-entry user catalog: {t:.3f} s  (target < {TARGET_10K} s: "
                  f"{ok})")
    if plug:
        for label, t in plug.items():
            extra = (t - base[label]) / args.plugins * 1000
            print(f"{label}, {args.plugins} plugins: {t / base[label]:.2f}x the run without "
                  f"them ({extra:+.1f} ms per plugin)")
        print(f"(plugins installed with {args.plugin_install} in {install_s:.1f} s)")


if __name__ == "__main__":
    main()
