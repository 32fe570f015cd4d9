"""Load plugins, built-in and third-party, each on its own, and call their hooks safely.

Built-in families are plugins exactly like third-party ones; they are listed in
``BUILTIN_PLUGINS`` and registered first, so a third-party model can never take a
built-in name. Third-party plugins come from the ``zoo`` entry-point group. Each is
imported and called inside its own ``try``: a plugin that fails to import, registers a
bad hook, raises inside a hook or returns garbage from one is reported (one stderr line
``zoo: warning: plugin 'NAME': ...`` and ``zoo plugins``) and skipped, with everything it
had added so far; the rest keeps working.

What a plugin's import may and may not do:

- Its import is timed (``import_seconds`` in ``zoo plugins --json``); one slower than
  ``ZOO_PLUGIN_SLOW_SECONDS`` gets a warning, since every zoo command waits for it.
- Entry-point plugins are imported in one daemon thread that the caller waits on, so a
  plugin that hangs at import (a loop, a blocking socket) is abandoned after
  ``ZOO_PLUGIN_IMPORT_TIMEOUT`` seconds and the command goes on; the interpreter still
  exits at the end (the thread is a daemon). See ``_import_entry_points`` for what a
  thread can and cannot undo.
- What it prints to stdout while being imported or called goes to stderr instead, so
  ``zoo list --json`` stays valid JSON (only ``sys.stdout``: a write to file descriptor 1
  is not caught).
- A ``sys.path`` entry it puts in front of the existing ones is moved to the end (it must
  not shadow installed packages, zoo's own included); one it removes is put back.
- ``KeyboardInterrupt`` is never swallowed: Ctrl-C while plugins load stops the command.
  ``SystemExit`` and every other exception only fail the plugin that raised it.

Environment:
    ``ZOO_PLUGINS``: comma-separated allow-list of entry-point plugins to load
    (set but empty: load none).
    ``ZOO_DISABLE_PLUGINS``: comma-separated plugins (built-in or not) never to load.
    ``ZOO_PLUGIN_SLOW_SECONDS``: import time above which a plugin is flagged (default 1.0).
    ``ZOO_PLUGIN_IMPORT_TIMEOUT``: seconds an entry-point plugin may take to import before
    it is skipped (default 10; 0 imports in the calling thread with no time limit).
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError, ZooError

ALLOW_ENV = "ZOO_PLUGINS"
DENY_ENV = "ZOO_DISABLE_PLUGINS"
SLOW_ENV = "ZOO_PLUGIN_SLOW_SECONDS"
TIMEOUT_ENV = "ZOO_PLUGIN_IMPORT_TIMEOUT"
GROUP = "zoo"
DEFAULT_SLOW_SECONDS = 1.0
DEFAULT_IMPORT_TIMEOUT = 10.0

BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("cnn", "zoo.plugins.cnn"),
    ("rnn", "zoo.plugins.rnn"),
    ("transformer", "zoo.plugins.transformer"),
    ("gan", "zoo.plugins.gan"),
    ("gnn", "zoo.plugins.gnn"),
    ("loaders", "zoo.loaders"),
    ("demos", "zoo.demos.adapters"),
)

HOOK_NAMES = tuple(n for n in dir(hookspecs) if n.startswith("zoo_"))
_MARK = hookspecs.PROJECT + "_impl"     # the attribute @zoo.hookimpl sets on a function


@dataclass
class PluginInfo:
    """What ``zoo plugins`` shows about one plugin."""

    name: str
    module: str
    source: str                     # "built-in" or "entry point"
    distribution: str | None = None
    version: str | None = None
    models: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    loaded: bool = False
    disabled: bool = False
    failed: bool = False            # failed to import, was refused, or a hook raised
    import_seconds: float | None = None   # wall time of its import (None: not imported)
    # How many errors and whether it had failed when loading ended: a registry rebuild
    # starts again from there, so models and hook errors are not counted twice.
    _load_state: tuple[int, bool] = field(default=(0, False), repr=False, compare=False)

    @property
    def status(self) -> str:
        if self.disabled:
            return "disabled"
        if self.failed or not self.loaded:
            return "error"
        return "warning" if self.errors else "ok"

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return {**out, "status": self.status}

    def note(self, message: str, *, fail: bool = False, echo: bool = True) -> None:
        """Record a problem (once) and, with ``echo``, warn on stderr."""
        if fail:
            self.failed = True
        if message not in self.errors:
            self.errors.append(message)
        if echo:
            warn(f"plugin '{self.name}': {message}")


def env_key() -> tuple[str | None, ...]:
    return (os.environ.get(ALLOW_ENV), os.environ.get(DENY_ENV), os.environ.get(SLOW_ENV),
            os.environ.get(TIMEOUT_ENV))


def _names(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


def _seconds(var: str, default: float) -> float:
    value = os.environ.get(var, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        warn(f"{var}={value!r} is not a number of seconds; using {default:g}")
        return default


class Plugins:
    """A pluggy manager plus a record of every plugin's fate."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    # -- loading -----------------------------------------------------------------------

    def load(self, *, builtins: bool = True, entry_points: bool = True) -> None:
        """Import and register every enabled plugin, each in isolation."""
        deny = _names(DENY_ENV) or set()
        allow = _names(ALLOW_ENV)
        slow = _seconds(SLOW_ENV, DEFAULT_SLOW_SECONDS)
        with _stdout_to_stderr():
            if builtins:
                for name, module in BUILTIN_PLUGINS:
                    info = PluginInfo(name=name, module=module, source="built-in",
                                      distribution="zoo", version=_zoo_version())
                    self.infos[name] = info
                    if name in deny:
                        info.disabled = True
                        continue
                    # Built-ins import in this thread: they are ours, and a thread hop
                    # would only cost time.
                    self._finish(info, _timed(lambda m=module: import_module(m)), slow)
            if entry_points:
                jobs = []
                for ep, dist, version in discover_entry_points():
                    info = PluginInfo(name=ep.name, module=ep.value, source="entry point",
                                      distribution=dist, version=version)
                    off = ep.name in deny or (allow is not None and ep.name not in allow)
                    if ep.name in self.infos:
                        other = self.infos[ep.name]
                        self.infos[f"{ep.name} ({dist})"] = info
                        info.disabled = off
                        info.errors.append(
                            f"plugin name '{ep.name}' from {dist} is already taken by "
                            f"{other.distribution or other.source}; rename its entry point")
                        continue
                    self.infos[ep.name] = info
                    if off:
                        info.disabled = True
                        continue
                    jobs.append((info, ep.load))
                timeout = _seconds(TIMEOUT_ENV, DEFAULT_IMPORT_TIMEOUT)
                for info, outcome in _import_entry_points(jobs, timeout):
                    self._finish(info, outcome, slow)
        for info in self.infos.values():
            info._load_state = (len(info.errors), info.failed)

    def register_object(self, name: str, plugin: Any, *, source: str = "code") -> PluginInfo:
        """Register an already imported plugin object (tests, notebooks)."""
        try:
            module = getattr(plugin, "__name__", None) or type(plugin).__qualname__
        except Exception:  # an object whose attribute access raises
            module = type(plugin).__qualname__
        info = PluginInfo(name=name, module=str(module), source=source)
        if name in self.infos:
            # Replacing the record would hide the plugin that holds the name (a built-in's
            # models would silently vanish): this one is refused under a name of its own.
            other = self.infos[name]
            info.errors.append(f"plugin name '{name}' is already taken by "
                               f"{other.distribution or other.source}; choose another name")
            self.infos[f"{name} ({source})"] = info
            info._load_state = (1, False)
            return info
        self.infos[name] = info
        self._finish(info, _Outcome(obj=plugin), slow=None)
        info._load_state = (len(info.errors), info.failed)
        return info

    def _finish(self, info: PluginInfo, outcome: _Outcome, slow: float | None) -> None:
        """Record how the import went, then register the plugin object (or not)."""
        if outcome.seconds is not None:
            info.import_seconds = round(outcome.seconds, 3)
        info.errors.extend(outcome.notes)
        if outcome.timed_out is not None:
            info.failed = True
            info.errors.append(
                f"did not finish importing in {outcome.timed_out:g} s; skipped (it may hang "
                f"at import: {TIMEOUT_ENV}=SECONDS waits longer, {DENY_ENV}={info.name} "
                "skips it)")
            return
        if outcome.error is not None:
            info.failed = True
            info.errors.append(f"failed to import: {_describe(outcome.error)}")
            return
        if slow is not None and outcome.seconds is not None and outcome.seconds > slow:
            info.errors.append(
                f"took {outcome.seconds:.1f} s to import; every zoo command waits for it; "
                f"{DENY_ENV}={info.name} skips it")
        self._register(info, outcome.obj)

    def _register(self, info: PluginInfo, obj: Any) -> None:
        held = self.pm.get_plugin(info.name)
        try:
            problems = _check_plugin_object(obj)
            self.pm.register(obj, name=info.name)
        except Exception as e:
            # pluggy registers a plugin's hooks one by one and stops at the first bad one:
            # drop the ones it already added, or a refused plugin would still be called
            # (but never a registration that was there before this call).
            with contextlib.suppress(Exception):
                if held is None and self.pm.get_plugin(info.name) is obj:
                    self.pm.unregister(name=info.name)
            info.errors.append(f"refused: {_describe(e)}")
            info.failed = True
            return
        info.errors.extend(problems)
        if not self.pm.get_hookcallers(obj) and not problems:
            info.errors.append("has no @zoo.hookimpl functions, so it adds nothing; mark "
                               "its hooks with @zoo.hookimpl")
        info.loaded = True

    # -- calling hooks -----------------------------------------------------------------

    def _impls(self, hook: str, plugin: str):
        caller = getattr(self.pm.hook, hook)
        return [i for i in caller.get_hookimpls() if i.plugin_name == plugin]

    def _usable(self, plugin: str) -> bool:
        info = self.infos.get(plugin)
        return info is None or (info.loaded and not info.failed)

    def call_each(self, hook: str, **kwargs: Any) -> Iterator[tuple[PluginInfo, Any]]:
        """Call ``hook`` plugin by plugin in load order, skipping failed plugins.

        Each yielded item is ``(info, call)`` where ``call()`` runs that plugin's impl. A
        plugin that fails while an earlier item was handled is skipped from then on.
        """
        for info in list(self.infos.values()):
            if not info.loaded or info.failed:
                continue
            for impl in self._impls(hook, info.name):
                if info.failed:
                    break
                args = {a: kwargs[a] for a in impl.argnames if a in kwargs}
                yield info, (lambda f=impl.function, a=args: _call(f, a))

    def first_result(self, hook: str, **kwargs: Any) -> tuple[Any, str | None]:
        """Call a firstresult hook in pluggy's order; return ``(result, plugin name)``.

        A plugin's own ``ZooError`` propagates; any other exception becomes a
        :class:`PluginError` naming the plugin. An answer of the wrong kind (a loader
        returning a string instead of the model) is reported and the next plugin asked;
        if none answers properly, that becomes the PluginError.
        """
        caller = getattr(self.pm.hook, hook)
        check = _RESULT_CHECKS.get(hook)
        garbage: tuple[str, str] | None = None
        with _stdout_to_stderr():
            for impl in reversed(caller.get_hookimpls()):
                if not self._usable(impl.plugin_name):
                    continue
                args = {a: kwargs[a] for a in impl.argnames if a in kwargs}
                try:
                    result = _call(impl.function, args)
                except ZooError:
                    raise
                except (Exception, SystemExit) as e:
                    raise PluginError(impl.plugin_name,
                                      f"{hook} raised {_describe(e)}; "
                                      f"{DENY_ENV}={impl.plugin_name} skips it") from e
                if result is None:
                    continue
                problem = check(result, kwargs) if check else None
                if problem is None:
                    return result, impl.plugin_name
                msg = f"{hook} returned {problem}; ignored it"
                self._note(impl.plugin_name, msg)
                garbage = garbage or (impl.plugin_name, f"{hook} returned {problem}")
        if garbage is not None:
            raise PluginError(garbage[0], garbage[1] + f"; {DENY_ENV}={garbage[0]} skips it")
        return None, None

    def collect(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a plain hook on every plugin; return ``[(plugin, result)]`` of those that answered.

        A plugin that raises or answers with the wrong kind of value is reported on
        stderr and skipped.
        """
        out = []
        check = _RESULT_CHECKS.get(hook)
        with _stdout_to_stderr():
            for info, call in self.call_each(hook, **kwargs):
                try:
                    result = call()
                except (Exception, SystemExit) as e:
                    info.note(f"{hook} raised {_describe(e)}")
                    continue
                if result is None:
                    continue
                problem = check(result, kwargs) if check else None
                if problem is not None:
                    info.note(f"{hook} returned {problem}; ignored it")
                    continue
                out.append((info.name, result))
        return out

    def _note(self, plugin: str, message: str) -> None:
        info = self.infos.get(plugin)
        if info is not None:
            info.note(message)
        else:
            warn(f"plugin '{plugin}': {message}")


# -- importing ---------------------------------------------------------------------------

@dataclass
class _Outcome:
    """What importing one plugin gave."""

    obj: Any = None
    error: BaseException | None = None
    seconds: float | None = None
    timed_out: float | None = None      # the limit it exceeded
    notes: list[str] = field(default_factory=list)


def _timed(load: Callable[[], Any]) -> _Outcome:
    """Run ``load()``, timing it and keeping ``sys.path`` sane; never raises except Ctrl-C."""
    before = list(sys.path)
    t0 = time.perf_counter()
    try:
        out = _Outcome(obj=load())
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # SystemExit, and anything a plugin invents, fails only it
        out = _Outcome(error=e)
    out.seconds = time.perf_counter() - t0
    if sys.path != before:
        try:
            out.notes.extend(_restore_sys_path(before))
        except Exception:  # unhashable junk in sys.path: put the old list back whole
            sys.path[:] = before
            out.notes.append("put something that is no path into sys.path; put back")
    return out


def _restore_sys_path(before: list[str]) -> list[str]:
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


def _import_entry_points(jobs: list[tuple[PluginInfo, Callable[[], Any]]],
                         timeout: float) -> Iterator[tuple[PluginInfo, _Outcome]]:
    """Import entry-point plugins in order, giving each ``timeout`` seconds.

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
    if timeout <= 0 or _holds_import_lock():
        for info, load in jobs:
            yield info, _timed(load)
        return
    start = 0
    while start < len(jobs):
        batch = jobs[start:]
        lock = threading.Lock()
        state: dict[str, Any] = {"index": None, "t0": 0.0, "cancelled": False}
        results: list[_Outcome | None] = [None] * len(batch)
        done = threading.Event()

        def work(batch=batch, state=state, results=results, lock=lock, done=done) -> None:
            for i, (_info, load) in enumerate(batch):
                with lock:
                    if state["cancelled"]:
                        return
                    state["index"], state["t0"] = i, time.perf_counter()
                try:
                    out = _timed(load)
                except BaseException as e:  # KeyboardInterrupt raised by the plugin itself
                    out = _Outcome(error=e)
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
            out = results[i] or _Outcome(error=RuntimeError("lost its import result"))
            if isinstance(out.error, KeyboardInterrupt):
                raise out.error
            if isinstance(out.error, ValueError) and "main thread" in str(out.error):
                out = _timed(load)      # signal.signal() and friends: main thread only
            yield info, out
        if abandoned is None:
            return
        yield batch[abandoned][0], _Outcome(seconds=time.perf_counter() - state["t0"],
                                            timed_out=timeout)
        start += abandoned + 1


def _holds_import_lock() -> bool:
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


class _StdoutToStderr:
    """Plugins' prints go to stderr: zoo's stdout is its output (``--json``)."""

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


_stdout_to_stderr = _StdoutToStderr()


# -- checking what plugins give ------------------------------------------------------------

def _call(function: Callable[..., Any], args: dict[str, Any]) -> Any:
    result = function(**args)
    if inspect.iscoroutine(result):
        result.close()
        raise TypeError("the hook is an async function; zoo calls hooks synchronously: "
                        "use a plain def")
    return result


def _safe_getattr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:  # a module __getattr__ or property that raises something else
        return None


def _check_plugin_object(obj: Any) -> list[str]:
    """Refuse a class whose hooks need an instance; return warnings for likely mistakes.

    Raises:
        TypeError: ``obj`` is a class whose hooks are instance methods.
    """
    if inspect.isclass(obj):
        for name in HOOK_NAMES:
            fn = _safe_getattr(obj, name)
            if inspect.isfunction(fn) and _safe_getattr(fn, _MARK) is not None:
                params = list(inspect.signature(fn).parameters)
                if params and params[0] == "self":
                    raise TypeError(
                        f"{obj.__qualname__} is a class whose hooks take 'self'; point the "
                        "entry point at a module or at an instance of it")
    out = []
    for name in HOOK_NAMES:
        fn = _safe_getattr(obj, name)
        if callable(fn) and _safe_getattr(fn, _MARK) is None:
            out.append(f"defines '{name}' without @zoo.hookimpl, so zoo never calls it")
    return out + _unknown_hooks(obj)


def _describe(e: BaseException) -> str:
    """``Type: message`` on one line (multi-line messages joined), at most 300 characters."""
    try:
        text = "; ".join(ln.strip() for ln in str(e).splitlines() if ln.strip())
    except Exception:  # an exception whose __str__ raises
        text = ""
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _kind(value: Any) -> str:
    """``an int (5)``: what a plugin gave, for messages."""
    name = type(value).__name__
    try:
        shown = repr(value)
    except Exception:
        shown = ""
    shown = f" ({shown[:40]}{'...' if len(shown) > 40 else ''})" if shown else ""
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}{shown}"


def _unknown_hooks(obj: Any) -> list[str]:
    """Functions named ``zoo_*`` that match no hook: almost always a typo."""
    out = []
    try:
        attrs = dir(obj)
    except Exception:
        return out
    for attr in attrs:
        if attr.startswith("zoo_") and attr not in HOOK_NAMES \
                and callable(_safe_getattr(obj, attr)):
            close = difflib.get_close_matches(attr, HOOK_NAMES, n=1)
            out.append(f"defines '{attr}', which is no zoo hook"
                       + (f"; did you mean '{close[0]}'?" if close else ""))
    return out


_LIST_KEYS = ("lora_targets", "layer_groups", "no_decay", "target_parameters")


def _check_finetune(answer: Any, _kwargs: Mapping[str, Any]) -> str | None:
    from .catalog import FINETUNE_KEYS

    if not isinstance(answer, Mapping):
        return _kind(answer) + ", not a dict of " + ", ".join(sorted(FINETUNE_KEYS))
    unknown = sorted(str(k) for k in answer if k not in FINETUNE_KEYS)
    if unknown:
        return (f"unknown keys {', '.join(unknown)} (known: "
                + ", ".join(sorted(FINETUNE_KEYS)) + ")")
    for key, value in answer.items():
        if key in _LIST_KEYS:
            ok = isinstance(value, str) or (isinstance(value, list | tuple)
                                            and all(isinstance(v, str) for v in value))
            if not ok:
                return f"{key} = {_kind(value)}; give a list of names"
        elif value is not None and not isinstance(value, str):
            return f"{key} = {_kind(value)}; give a name"
    return None


def _check_model(result: Any, _kwargs: Mapping[str, Any]) -> str | None:
    torch = sys.modules.get("torch")
    if torch is None or isinstance(result, torch.nn.Module):
        return None
    return _kind(result) + ", not the model (an nn.Module)"


def _check_adapter(result: Any, _kwargs: Mapping[str, Any]) -> str | None:
    # Duck-typed: the contract is zoo.demos.base.Adapter, but only its methods matter.
    if not inspect.isclass(result) and callable(_safe_getattr(result, "load")):
        return None
    return _kind(result) + ", not an adapter (an instance of zoo.demos.base.Adapter)"


_RESULT_CHECKS: dict[str, Callable[[Any, Mapping[str, Any]], str | None]] = {
    "zoo_finetune_hooks": _check_finetune,
    "zoo_load_pretrained": _check_model,
    "zoo_demo_adapter": _check_adapter,
}


def warn(message: str) -> None:
    """One line on stderr; plugin trouble never stops a command."""
    print(f"zoo: warning: {message}", file=sys.stderr)


_VERSION: str | None = None


def _zoo_version() -> str:
    global _VERSION
    if _VERSION is None:
        from . import __version__

        _VERSION = __version__
    return _VERSION


def discover_entry_points() -> list[tuple[Any, str | None, str | None]]:
    """``(entry point, distribution, version)`` for group ``zoo``, sorted by name."""
    from importlib.metadata import entry_points

    out = []
    seen = set()
    for ep in entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        dist_name = dist.name if dist else None
        # The same distribution seen twice on sys.path; two distributions declaring the
        # same name are both kept, and the second is reported as a duplicate.
        key = (ep.name, ep.value, dist_name)
        if key in seen:
            continue
        seen.add(key)
        out.append((ep, dist_name, dist.version if dist else None))
    out.sort(key=lambda t: t[0].name)
    return out


_PLUGINS: Plugins | None = None
_PLUGINS_KEY: tuple[str | None, ...] | None = None


def get_plugins() -> Plugins:
    """The process-wide plugin manager, loading plugins on first use (and again when the
    plugin variables change)."""
    global _PLUGINS, _PLUGINS_KEY
    key = env_key()
    # A manager set by hand (tests: ``_PLUGINS = plugins``, no key) is kept until reset().
    if _PLUGINS is None or (_PLUGINS_KEY is not None and key != _PLUGINS_KEY):
        plugins = Plugins()
        plugins.load()
        # Kept only once loading finished: after a Ctrl-C half-way, the next call loads
        # every plugin again instead of silently going on with some of them.
        _PLUGINS, _PLUGINS_KEY = plugins, key
    return _PLUGINS


def reset() -> None:
    global _PLUGINS, _PLUGINS_KEY
    _PLUGINS, _PLUGINS_KEY = None, None


# -- filling a registry ----------------------------------------------------------------------

def _fields_of(spec: Any) -> dict[str, Any]:
    """A ModelSpec as the keyword fields of ``Registry.add_model``, so that it is validated
    like a catalog table (a ModelSpec is a plain dataclass: anything fits in it)."""
    from dataclasses import fields

    out: dict[str, Any] = {"name": spec.name, "origin": spec.origin}
    for f in fields(spec):
        if f.name in ("name", "plugin", "origin"):
            continue
        value = getattr(spec, f.name)
        if value is None or (isinstance(value, Mapping | tuple) and not value):
            continue
        out[f.name] = value
    return out


def _add_returned(reg, returned: Any) -> None:
    """Plugins may also return their models (specs or field dicts) instead of adding them.

    A model that is invalid is refused and reported like one given to ``add_model``;
    anything that is not a model at all fails the plugin.
    """
    from .spec import ModelSpec

    what = ("return ModelSpecs or dicts of catalog fields (or call registry.add_model "
            "and return None)")
    if isinstance(returned, ModelSpec | Mapping):
        items: Iterable[Any] = [returned]
    elif isinstance(returned, str | bytes) or not isinstance(returned, Iterable):
        raise TypeError(f"zoo_register_models returned {_kind(returned)}; {what}")
    else:
        items = returned
    for item in items:
        if isinstance(item, ModelSpec):
            reg.add_model(**_fields_of(item))
        elif isinstance(item, Mapping):
            bad = [k for k in item if not isinstance(k, str)]
            if bad:
                reg._problem(f"a model given as a dict has non-text keys {bad[:3]!r}; refused")
                continue
            reg.add_model(**item)
        else:
            raise TypeError(f"zoo_register_models returned a list holding {_kind(item)}; "
                            f"{what}")


def _spec_problem(spec: Any) -> str | None:
    """What is wrong with a ModelSpec a plugin passed to ``add_model`` as a record (those
    skip the catalog's validation), or ``None``."""
    from .spec import InputSpec, PretrainedSpec

    def text(v: Any) -> bool:
        return isinstance(v, str) and bool(v)

    checks = (
        ("family", text(spec.family)), ("task", text(spec.task)),
        ("builder", text(spec.builder) or callable(spec.builder)),
        ("kwargs", isinstance(spec.kwargs, Mapping)),
        ("input", spec.input is None or isinstance(spec.input, InputSpec)),
        ("params", spec.params is None or (isinstance(spec.params, int)
                                           and not isinstance(spec.params, bool))),
        ("gflops", spec.gflops is None or (isinstance(spec.gflops, int | float)
                                           and not isinstance(spec.gflops, bool))),
        ("year", spec.year is None or isinstance(spec.year, int)),
        ("tags", isinstance(spec.tags, tuple | list) and all(text(t) for t in spec.tags)),
        ("finetune", isinstance(spec.finetune, Mapping)),
        ("pretrained", isinstance(spec.pretrained, Mapping) and all(
            isinstance(t, str) and isinstance(p, PretrainedSpec) and text(p.source)
            for t, p in spec.pretrained.items())),
    )
    for key in ("description", "paper", "paper_url", "license", "demo"):
        value = getattr(spec, key)
        if value is not None and not isinstance(value, str):
            checks += ((key, False),)
    bad = [k for k, ok in checks if not ok]
    if not bad:
        return None
    return (f"model '{spec.name}' has invalid {', '.join(bad)} "
            f"({', '.join(_kind(getattr(spec, k)) for k in bad[:2])}); refused")


def _refuse_bad_declarations(reg, families: set[Any], namespaces: set[Any]) -> None:
    """Drop families and namespaces the current plugin just declared with values of the
    wrong type: a family named ``5`` would break every later plugin's typo check and
    every listing that sorts families."""
    from .spec import NAME_RE

    def lazy(v: Any) -> bool:
        return v is None or isinstance(v, str) or callable(v)

    for key in [k for k in reg._families if k not in families]:
        fam = reg._families[key]
        bad = [what for what, ok in (
            ("name", isinstance(key, str) and NAME_RE.match(key) and "/" not in key),
            ("description", isinstance(fam.description, str)),
            ("example_input", lazy(fam.example_input)),
            ("finetune", isinstance(fam.finetune, Mapping))) if not ok]
        if bad:
            del reg._families[key]
            reg._problem(f"family {str(key)[:40]!r} has invalid {', '.join(bad)}; refused")
    for key in [k for k in reg._namespaces if k not in namespaces]:
        ns = reg._namespaces[key]
        bad = [what for what, ok in (
            ("prefix", isinstance(key, str) and NAME_RE.match(key) and "/" not in key),
            ("resolve", lazy(ns._fns["resolve"]) and ns._fns["resolve"] is not None),
            ("names", lazy(ns._fns["names"]) and ns._fns["names"] is not None)) if not ok]
        if bad:
            del reg._namespaces[key]
            reg._problem(f"namespace {str(key)[:40]!r} has invalid {', '.join(bad)}; refused")


def _purge(reg, plugin: str) -> None:
    """Take out of ``reg`` everything a failed plugin added: models (committed by an
    earlier hook), namespaces, and families no remaining model uses.

    Registry stages only models, so families and namespaces are removed here by owner.
    """
    for name in [n for n, s in reg._models.items() if s.plugin == plugin]:
        del reg._models[name]
    for prefix in [p for p, ns in reg._namespaces.items() if ns.plugin == plugin]:
        del reg._namespaces[prefix]
    used = {s.family for s in reg._models.values()}
    for fam in [f for f, spec in reg._families.items()
                if spec.plugin == plugin and f not in used]:
        del reg._families[fam]


def build_registry(catalogs: Iterable[Path] = (), plugins: Plugins | None = None):
    """Fill a fresh Registry from every loaded plugin, then from users' catalogs."""
    from .registry import Registry, add_user_catalogs

    plugins = plugins or get_plugins()
    reg = Registry()
    for info in plugins.infos.values():     # a rebuild starts from the loading's outcome
        n, failed = info._load_state
        info.models, info.errors, info.failed = [], info.errors[:n], failed
    with _stdout_to_stderr():
        for hook in ("zoo_register_families", "zoo_register_models"):
            for info, call in plugins.call_each(hook, registry=reg):
                reg.begin(info.name)
                before = (set(reg._families), set(reg._namespaces))
                try:
                    returned = call()
                    if hook == "zoo_register_models" and returned is not None:
                        _add_returned(reg, returned)
                    _refuse_bad_declarations(reg, *before)
                    staged = reg._staged or {}
                    if info.source != "built-in":
                        for name, spec in list(staged.items()):
                            problem = _spec_problem(spec)
                            if problem:
                                del staged[name]
                                reg._problem(problem)
                except (Exception, SystemExit) as e:
                    reg.rollback()
                    _purge(reg, info.name)
                    info.models.clear()
                    msg = f"{hook} raised {_describe(e)}"
                    if isinstance(e, ZooError):
                        msg = f"{hook} failed: {e}"
                    info.note(msg, fail=True)
                    continue
                info.models.extend(reg.commit())
    for name, problems in reg.problems.items():
        info = plugins.infos.get(name)
        for p in problems:
            if info is not None and p not in info.errors:
                info.errors.append(p)
            warn(f"plugin '{name}': {p}")
    add_user_catalogs(reg, catalogs)
    for info in plugins.infos.values():
        if info.disabled:
            continue
        # Load-time trouble (failed imports, refusals, slow imports, typos) is told once
        # per registry, like hook trouble.
        for err in info.errors[:info._load_state[0]]:
            warn(f"plugin '{info.name}': {err}")
    return reg
