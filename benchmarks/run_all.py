"""Run every benchmark in benchmarks/ with modest settings and print each one's ratios.

    python benchmarks/run_all.py                  # all of them, modest settings (~10 min)
    python benchmarks/run_all.py --only scale build_overhead
    python benchmarks/run_all.py --full           # each script's own (bigger) defaults

Each script runs as its own process (so imports and caches never carry over) with its
output streamed as it comes; at the end a summary repeats every script's ratio and target
lines. Scripts added to benchmarks/ later run too, with their defaults. Exits non-zero if
any script failed. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Script -> arguments for a modest run (a few minutes in all on 2 cores). Order: the
#: timing-sensitive CLI benchmarks first, the long, CPU-bound ones last.
MODEST: dict[str, list[str]] = {
    "cli_startup.py": ["--runs", "5"],
    "scale.py": ["--runs", "5", "--sizes", "1000", "3000", "10000",
                 "--plugin-install", "dist-info"],
    "build_overhead.py": ["--reps", "5", "--small-reps", "100"],
    "demo_load.py": ["--clients", "8", "--requests", "10", "--procs", "2"],
    "finetune.py": ["--train", "200", "--val", "100"],
    "user_data.py": ["--only", "images"],
}

#: Lines worth repeating in the summary: ratios, targets and the table rows with ratios.
SUMMARY = re.compile(r"target|ratio|faster|the run without|\d\.\d+x\)|growth:", re.I)


def scripts() -> list[str]:
    """Every benchmark script: the known ones in order, then any others by name."""
    found = sorted(p.name for p in HERE.glob("*.py")
                   if p.name != Path(__file__).name and not p.name.startswith("_"))
    return [s for s in MODEST if s in found] + [s for s in found if s not in MODEST]


def run(script: str, extra: list[str], timeout: float) -> tuple[int, float, list[str]]:
    """Run one script, echoing its output; return (exit code, seconds, output lines)."""
    env = {**os.environ}
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"     # stream the output as it comes
    cmd = [sys.executable, str(HERE / script), *extra]
    print(f"\n=== {script} {' '.join(extra)}".rstrip(), flush=True)
    t = time.perf_counter()
    lines: list[str] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=HERE.parent)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line.rstrip("\n"))
            if time.perf_counter() - t > timeout:
                raise subprocess.TimeoutExpired(cmd, timeout)
        code = proc.wait(timeout=max(1.0, timeout - (time.perf_counter() - t)))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        lines.append(f"timed out after {timeout:.0f} s")
        code = -1
    return code, time.perf_counter() - t, lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None,
                    help="script names (with or without .py) to run; default: all")
    ap.add_argument("--skip", nargs="*", default=[], help="script names not to run")
    ap.add_argument("--full", action="store_true", help="use each script's own defaults")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per script")
    args = ap.parse_args(argv)

    def norm(names: list[str]) -> set[str]:
        return {n if n.endswith(".py") else f"{n}.py" for n in names}

    chosen = scripts()
    if args.only is not None:
        unknown = norm(args.only) - set(chosen)
        if unknown:
            ap.error(f"no such benchmark: {', '.join(sorted(unknown))}; "
                     f"have {', '.join(chosen)}")
        chosen = [s for s in chosen if s in norm(args.only)]
    chosen = [s for s in chosen if s not in norm(args.skip)]

    results = []
    for script in chosen:
        extra = [] if args.full else MODEST.get(script, [])
        results.append((script, *run(script, extra, args.timeout)))

    print("\n=== summary")
    failed = 0
    for script, code, secs, lines in results:
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        failed += code != 0
        print(f"\n{script}: {status}, {secs:.0f} s")
        for line in lines:
            if SUMMARY.search(line):
                print(f"  {line.strip()}")
        if code != 0 and lines:
            print(f"  last line: {lines[-1].strip()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
