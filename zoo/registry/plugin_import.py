"""How zoo imports a plugin: timed, in a worker thread with a time limit, with its stdout
sent to stderr and the ``sys.path`` entries it puts in front moved back.

:mod:`zoo.registry.plugins` decides which plugins to import and records what happened;
this module only does the importing, and knows nothing of plugins beyond a callable that
imports one (``EntryPoint.load`` or ``lambda: import_module(name)``).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")     # whatever the caller pairs with each import job (its PluginInfo)


@dataclass
class Outcome:
    """What importing one plugin gave."""

    obj: Any = None
    error: BaseException | None = None
    seconds: float | None = None
    timed_out: float | None = None      # the limit it exceeded
    notes: list[str] = field(default_factory=list)


def timed(load: Callable[[], Any]) -> Outcome:
    """Run ``load()``, timing it and keeping ``sys.path`` sane; never raises except Ctrl-C."""
    before = list(sys.path)
    t0 = time.perf_counter()
    try:
        out = Outcome(obj=load())
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # SystemExit, and anything a plugin invents, fails only it
        out = Outcome(error=e)
    out.seconds = time.perf_counter() - t0
    if sys.path != before:
        try:
            out.notes.extend(restore_sys_path(before))
        except Exception:  # unhashable junk in sys.path: put the old list back whole
            sys.path[:] = before
            out.notes.append("put something that is no path into sys.path; put back")
    return out


def restore_sys_path(before: list[str]) -> list[str]:
    """Keep what a plugin appended to ``sys.path``; move what it put in front of existing
    entries to the end, put back what it removed. Returns the warnings to record."""
    now = list(sys.path)
    old = set(before)
    added = [p for p in now if p not in old]
    gone = [p for p in before if p not in set(now)]
    ahead: list[str] = []
    pending: list[str] = []
    for p in now:
        if p in old:
            ahead += pending
            pending = []
        else:
            pending.append(p)
    notes = []
    if ahead:
        notes.append("put " + ", ".join(repr(p) for p in ahead[:3]) + " in front of "
                     "sys.path; moved to the end so it cannot shadow installed packages")
    if gone:
        notes.append("removed " + ", ".join(repr(p) for p in gone[:3]) + " from sys.path; "
                     "put back")
    if sys.path != before + added:
        sys.path[:] = before + added
    return notes


def import_entry_points(jobs: list[tuple[T, Callable[[], Any]]],
                        timeout: float) -> Iterator[tuple[T, Outcome]]:
    """Import entry-point plugins in order, giving each ``timeout`` seconds; yield
    ``(job's tag, Outcome)`` in the order of ``jobs``.

    All of them are imported in ONE daemon worker thread (a thread start costs ~0.1 ms
    here; per plugin that would add up), which the caller waits on; when a plugin exceeds
    its time, the worker is abandoned and a new one takes the remaining plugins. Why this
    is sound, and where it is not:

    - The interpreter exits at the end of the command: the worker is a daemon thread, not
      joined at shutdown, whether it sleeps, blocks on a socket or loops.
    - Ctrl-C reaches the caller (the main thread) in its wait: the command stops.
    - Imports take per-module locks. A module a plugin imports in the worker (torch,
      say) and that the main thread imports later makes the main thread wait for the
      worker's import to finish, then go on: no deadlock. An abandoned plugin that hangs
      *while importing a shared module* keeps that module's lock forever, and the main
      thread would hang on its first import of that module; this cannot be undone
      from outside a thread. It only happens to libraries a hanging plugin was in the
      middle of importing.
    - An abandoned plugin that busy-loops keeps competing for the GIL, so the rest of
      that command runs slower (but runs). One that hangs in C holding the GIL cannot be
      helped by any thread: ``ZOO_DISABLE_PLUGINS=NAME``.
    - If the caller is itself in the middle of an import (``zoo.get`` at the top level of
      a module being imported), a plugin importing that module would wait on the caller,
      which waits on it; plugins then import in the calling thread, timed but unbounded.
      So they do with ``ZOO_PLUGIN_IMPORT_TIMEOUT=0``.
    - Code that must run in the main thread (``signal.signal``) fails in a worker with
      ValueError; such a plugin is imported again in the calling thread.
    """
    if not jobs:
        return
    if timeout <= 0 or holds_import_lock():
        for info, load in jobs:
            yield info, timed(load)
        return
    start = 0
    while start < len(jobs):
        batch = jobs[start:]
        lock = threading.Lock()
        state: dict[str, Any] = {"index": None, "t0": 0.0, "cancelled": False}
        results: list[Outcome | None] = [None] * len(batch)
        done = threading.Event()

        def work(batch=batch, state=state, results=results, lock=lock, done=done) -> None:
            for i, (_info, load) in enumerate(batch):
                with lock:
                    if state["cancelled"]:
                        return
                    state["index"], state["t0"] = i, time.perf_counter()
                try:
                    out = timed(load)
                except BaseException as e:  # KeyboardInterrupt raised by the plugin itself
                    out = Outcome(error=e)
                with lock:
                    if state["cancelled"]:
                        return
                    results[i], state["index"] = out, None
            done.set()

        threading.Thread(target=work, name="zoo-plugin-import", daemon=True).start()
        abandoned = None
        while not done.is_set():
            with lock:
                i, t0 = state["index"], state["t0"]
                late = i is not None and time.perf_counter() - t0 >= timeout
                if late:
                    state["cancelled"] = True
                    abandoned = i
            if late:
                break
            # Between two plugins (or before the first) the index is None for a moment.
            wait = timeout - (time.perf_counter() - t0) if i is not None else 0.05
            done.wait(max(wait, 0.001))
        finished = abandoned if abandoned is not None else len(batch)
        for i in range(finished):
            info, load = batch[i]
            out = results[i] or Outcome(error=RuntimeError("lost its import result"))
            if isinstance(out.error, KeyboardInterrupt):
                raise out.error
            if isinstance(out.error, ValueError) and "main thread" in str(out.error):
                out = timed(load)      # signal.signal() and friends: main thread only
            yield info, out
        if abandoned is None:
            return
        yield batch[abandoned][0], Outcome(seconds=time.perf_counter() - state["t0"],
                                            timed_out=timeout)
        start += abandoned + 1


def holds_import_lock() -> bool:
    """Whether this thread is in the middle of importing a module (holds a module lock)."""
    try:
        from importlib import _bootstrap

        me = threading.get_ident()
        for ref in list(_bootstrap._module_locks.values()):
            lock = ref() if callable(ref) else ref
            if lock is not None and getattr(lock, "owner", None) == me:
                return True
    except Exception:  # another Python's internals: assume not
        return False
    return False


class StdoutToStderr:
    """Plugins' prints go to stderr: zoo's stdout is its output (``--json``).

    Re-entrant and shared by threads: ``with stdout_to_stderr(): ...``.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.saved: Any = None
        self.lock = threading.Lock()    # demo servers call hooks from several threads

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self.lock:
            if self.depth == 0:
                self.saved = sys.stdout
                sys.stdout = sys.stderr
            self.depth += 1
        try:
            yield
        finally:
            with self.lock:
                self.depth -= 1
                if self.depth == 0:
                    # If a plugin replaced sys.stdout meanwhile, its stream is dropped:
                    # that is what protecting stdout means.
                    sys.stdout = self.saved
                    self.saved = None


stdout_to_stderr = StdoutToStderr()      # the one instance every caller shares
