"""Canaries for the security tests: proof that nothing outside the expected folder was read,
written or run (``from canary import ...``; tests/ is on sys.path).

* :func:`run_audited` runs a real ``zoo`` command in a fresh interpreter with a Python audit
  hook (PEP 578) that logs every file it opens under the watched folders, so a test can
  assert that a secret file was never opened, not merely that its content did not leak.
* :func:`opens_under` does the same inside this process (for commands run through typer's
  CliRunner, which costs no interpreter start).
* :func:`pickle_bomb` writes a pickle that creates a marker file when unpickled: the marker
  existing means the payload ran.
* :func:`files_under` lists a tree, to compare before and after: nothing written outside.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_BOOT = r"""
import os, sys
_log = os.open(os.environ.pop("CANARY_LOG"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
_watch = tuple(os.environ.pop("CANARY_WATCH").split(os.pathsep))
_seen = set()
def _hook(event, args):
    if event != "open" or not args or isinstance(args[0], int):
        return
    try:
        path = os.path.abspath(os.fsdecode(args[0]))
    except (TypeError, ValueError):
        return
    if path.startswith(_watch) and path not in _seen:
        _seen.add(path)
        os.write(_log, (path + "\n").encode("utf-8", "backslashreplace"))
sys.addaudithook(_hook)
import runpy
sys.argv = ["zoo", *sys.argv[1:]]
runpy.run_module("zoo", run_name="__main__", alter_sys=True)
"""


@dataclass
class Audited:
    """A finished ``zoo`` command and the watched files it opened."""

    returncode: int
    stdout: str
    stderr: str
    opened: list[str]

    def error_line(self) -> str:
        """The one ``Error:`` line of a refused command (asserted to be alone)."""
        lines = [ln for ln in self.stderr.strip().splitlines()
                 if not ln.startswith("(set ZOO_DEBUG=1")]
        assert len(lines) == 1 and lines[0].startswith("Error: "), self.stderr
        assert "Traceback" not in self.stderr, self.stderr
        return lines[0]


def run_audited(*args: str, watch: list[Path], env: dict[str, str] | None = None,
                cwd: str | Path | None = None, timeout: float = 300) -> Audited:
    """``python -m zoo ARGS`` with an audit hook logging opens under ``watch``."""
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"canary-{os.getpid()}-{id(args)}.log"
    log.unlink(missing_ok=True)
    full = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    full["OMP_NUM_THREADS"] = "1"
    full.update(env or {})
    full["CANARY_LOG"] = str(log)
    full["CANARY_WATCH"] = os.pathsep.join(str(Path(w).absolute()) for w in watch)
    proc = subprocess.run([sys.executable, "-c", _BOOT, *args], capture_output=True,
                          text=True, env=full, cwd=cwd, timeout=timeout)
    try:
        opened = log.read_text().splitlines()
    except FileNotFoundError:
        opened = []
    log.unlink(missing_ok=True)
    return Audited(proc.returncode, proc.stdout, proc.stderr, opened)


_RECORDERS: list[tuple[tuple[str, ...], list[str]]] = []
_HOOKED = False


def _in_process_hook(event: str, args: tuple) -> None:
    if event != "open" or not _RECORDERS or not args or isinstance(args[0], int):
        return
    try:
        path = os.path.abspath(os.fsdecode(args[0]))
    except (TypeError, ValueError):
        return
    for watch, seen in _RECORDERS:
        if path.startswith(watch):
            seen.append(path)


@contextlib.contextmanager
def opens_under(*watch: Path) -> Iterator[list[str]]:
    """Record, in this process, every file opened under ``watch`` inside the block.

    An audit hook cannot be removed once added (PEP 578): one is added on first use and
    does nothing while no block is recording.
    """
    global _HOOKED
    if not _HOOKED:
        sys.addaudithook(_in_process_hook)
        _HOOKED = True
    seen: list[str] = []
    entry = (tuple(str(Path(w).absolute()) for w in watch), seen)
    _RECORDERS.append(entry)
    try:
        yield seen
    finally:
        _RECORDERS.remove(entry)


class _Payload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        code = f"open({self.marker!r}, 'w').write('the payload ran')"
        return (exec, (code,))


def pickle_bomb(path: Path, marker: Path) -> Path:
    """Write a pickle to ``path`` that creates ``marker`` when anything unpickles it."""
    path.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    return path


def files_under(root: Path, *, skip: tuple[Path, ...] = ()) -> dict[str, int]:
    """Every file under ``root`` (not under ``skip``) with its mtime, to compare later."""
    out: dict[str, int] = {}
    skipped = tuple(str(s) for s in skip)
    for p in root.rglob("*"):
        if p.is_file() and not str(p).startswith(skipped):
            out[str(p.relative_to(root))] = p.stat().st_mtime_ns
    return out
