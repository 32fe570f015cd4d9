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
  exits at the end (the thread is a daemon). See
  :func:`zoo.registry.plugin_import.import_entry_points` for what a thread can and cannot undo.
- What it prints to stdout while being imported or called goes to stderr instead, so
  ``zoo list --json`` stays valid JSON (only ``sys.stdout``: a write to file descriptor 1
  is not caught).
- A ``sys.path`` entry it puts in front of the existing ones is moved to the end (it must
  not shadow installed packages, zoo's own included); one it removes is put back.
- ``KeyboardInterrupt`` is never swallowed: Ctrl-C while plugins load stops the command.
  ``SystemExit`` and every other exception only fail the plugin that raised it.

Where things happen: this module decides which plugins load and records each one's fate
(:class:`PluginInfo`, :class:`Plugins`, :func:`build_registry`); :mod:`zoo.registry.plugin_import`
imports one (timed, in a worker thread, stdout and ``sys.path`` guarded);
:mod:`zoo.registry.plugin_checks` checks what a plugin gives (its object, its hooks' answers);
:class:`zoo.registry.Registry` checks what it adds (models, families, namespaces).

Entry points are found through a cache checked with a few ``stat`` calls
(:mod:`zoo.registry.discovery`): a newly installed or removed plugin is seen by the next
command, and a plugin that timed out importing is skipped at once, with one warning
line, until its distribution changes. Warnings about an entry-point plugin name the
distribution to uninstall.

Environment (:mod:`zoo.registry.plugin_env`):
    ``ZOO_PLUGINS``: comma-separated allow-list of entry-point plugins to load
    (set but empty: load none); plugin or distribution names.
    ``ZOO_DISABLE_PLUGINS``: comma-separated plugins (built-in or not) never to load;
    plugin or distribution names.
    ``ZOO_PLUGIN_SLOW_SECONDS``: import time above which a plugin is flagged (default 1.0).
    ``ZOO_PLUGIN_IMPORT_TIMEOUT``: seconds an entry-point plugin may take to import before
    it is skipped (default 10; 0 imports in the calling thread with no time limit).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import pluggy

from zoo import hookspecs
from zoo.errors import PluginError, ZooError
from zoo.registry import discovery
from zoo.registry.plugin_checks import (
    HOOK_NAMES,
    RESULT_CHECKS,
    call_hook,
    check_plugin_object,
    describe,
    returned_models,
)
from zoo.registry.plugin_env import (
    ALLOW_ENV,
    DEFAULT_IMPORT_TIMEOUT,
    DEFAULT_SLOW_SECONDS,
    DENY_ENV,
    SLOW_ENV,
    TIMEOUT_ENV,
    check_names,
    env_key,
    named,
    names,
    seconds,
    warn,
)
from zoo.registry.plugin_import import Outcome, import_entry_points, stdout_to_stderr, timed
from zoo.version import DISTRIBUTION

__all__ = [
    "BUILTIN_PLUGINS", "HOOK_NAMES", "PluginInfo", "Plugins", "build_registry",
    "discover_entry_points", "env_key", "get_plugins", "reset", "warn",
]

GROUP = "zoo"

BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("cnn", "zoo.plugins.cnn"),
    ("rnn", "zoo.plugins.rnn"),
    ("transformer", "zoo.plugins.transformer"),
    ("gan", "zoo.plugins.gan"),
    ("gnn", "zoo.plugins.gnn"),
    ("loaders", "zoo.loading.loaders"),
    ("tasks", "zoo.tasks.builtin"),
    ("demos", "zoo.demos.adapters"),
)



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
            self.warn(message)

    def warn(self, message: str) -> None:
        """One stderr line about this plugin, naming the distribution that installed it."""
        where = ""
        if self.source == "entry point" and self.distribution:
            where = (f" (from distribution {self.distribution} {self.version or ''}".rstrip()
                     + f"; pip uninstall {self.distribution} removes it)")
        warn(f"plugin '{self.name}': {message}{where}")


class Plugins:
    """A pluggy manager plus a record of every plugin's fate."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    # -- loading -----------------------------------------------------------------------

    def load(self, *, builtins: bool = True, entry_points: bool = True) -> None:
        """Import and register every enabled plugin, each in isolation."""
        deny = names(DENY_ENV) or set()
        allow = names(ALLOW_ENV)
        slow = seconds(SLOW_ENV, DEFAULT_SLOW_SECONDS)
        with stdout_to_stderr():
            if builtins:
                for name, module in BUILTIN_PLUGINS:
                    info = PluginInfo(name=name, module=module, source="built-in",
                                      distribution=DISTRIBUTION, version=_zoo_version())
                    self.infos[name] = info
                    if name in deny:
                        info.disabled = True
                        continue
                    # Built-ins import in this thread: they are ours, and a thread hop
                    # would only cost time.
                    self._finish(info, timed(lambda m=module: import_module(m)), slow)
            if entry_points:
                jobs = []
                timeout = seconds(TIMEOUT_ENV, DEFAULT_IMPORT_TIMEOUT)
                found = discover_entry_points()
                hangs = discovery.hangs() if found else {}
                for ep, dist, version in found:
                    info = PluginInfo(name=ep.name, module=ep.value, source="entry point",
                                      distribution=dist, version=version)
                    off = named(deny, ep.name, dist) or (
                        allow is not None and not named(allow, ep.name, dist))
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
                    hung = discovery.earlier_hang(ep, timeout, hangs)
                    if hung is not None:
                        # Hangs cost once: every command would wait the full time again.
                        info.failed = True
                        info.errors.append(
                            f"did not finish importing in {hung:g} s in an earlier command; "
                            f"skipped until it changes ({TIMEOUT_ENV} above {hung:g} tries "
                            f"again, {DENY_ENV}={info.name} skips it quietly)")
                        continue
                    jobs.append(((info, ep), ep.load))
                for (info, ep), outcome in import_entry_points(jobs, timeout):
                    self._finish(info, outcome, slow)
                    if outcome.timed_out is not None:
                        discovery.remember_hang(ep, outcome.timed_out)
                    elif discovery.hang_key(ep) in hangs:
                        discovery.remember_hang(ep, None)
                check_names(self.infos.values(), deny, allow)
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
        self._finish(info, Outcome(obj=plugin), slow=None)
        info._load_state = (len(info.errors), info.failed)
        return info

    def _finish(self, info: PluginInfo, outcome: Outcome, slow: float | None) -> None:
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
            info.errors.append(f"failed to import: {describe(outcome.error)}")
            return
        if slow is not None and outcome.seconds is not None and outcome.seconds > slow:
            info.errors.append(
                f"took {outcome.seconds:.1f} s to import; every zoo command waits for it; "
                f"{DENY_ENV}={info.name} skips it")
        self._register(info, outcome.obj)

    def _register(self, info: PluginInfo, obj: Any) -> None:
        held = self.pm.get_plugin(info.name)
        try:
            problems = check_plugin_object(obj)
            self.pm.register(obj, name=info.name)
        except Exception as e:
            # pluggy registers a plugin's hooks one by one and stops at the first bad one:
            # drop the ones it already added, or a refused plugin would still be called
            # (but never a registration that was there before this call).
            with contextlib.suppress(Exception):
                if held is None and self.pm.get_plugin(info.name) is obj:
                    self.pm.unregister(name=info.name)
            info.errors.append(f"refused: {describe(e)}")
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
                yield info, (lambda f=impl.function, a=args: call_hook(f, a))

    def first_result(self, hook: str, **kwargs: Any) -> tuple[Any, str | None]:
        """Call a firstresult hook in pluggy's order; return ``(result, plugin name)``.

        A plugin's own ``ZooError`` propagates; any other exception becomes a
        :class:`PluginError` naming the plugin. An answer of the wrong kind (a loader
        returning a string instead of the model) is reported and the next plugin asked;
        if none answers properly, that becomes the PluginError.
        """
        caller = getattr(self.pm.hook, hook)
        check = RESULT_CHECKS.get(hook)
        garbage: tuple[str, str] | None = None
        with stdout_to_stderr():
            for impl in reversed(caller.get_hookimpls()):
                if not self._usable(impl.plugin_name):
                    continue
                args = {a: kwargs[a] for a in impl.argnames if a in kwargs}
                try:
                    result = call_hook(impl.function, args)
                except ZooError:
                    raise
                except (Exception, SystemExit) as e:
                    raise PluginError(impl.plugin_name,
                                      f"{hook} raised {describe(e)}; "
                                      + self._skip_hint(impl.plugin_name)) from e
                if result is None:
                    continue
                problem = check(result, kwargs) if check else None
                if problem is None:
                    return result, impl.plugin_name
                msg = f"{hook} returned {problem}; ignored it"
                self._note(impl.plugin_name, msg)
                garbage = garbage or (impl.plugin_name, f"{hook} returned {problem}")
        if garbage is not None:
            raise PluginError(garbage[0], f"{garbage[1]}; {self._skip_hint(garbage[0])}")
        return None, None

    def collect(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a plain hook on every plugin; return ``[(plugin, result)]`` of those that answered.

        A plugin that raises or answers with the wrong kind of value is reported on
        stderr and skipped.
        """
        out = []
        check = RESULT_CHECKS.get(hook)
        with stdout_to_stderr():
            for info, call in self.call_each(hook, **kwargs):
                try:
                    result = call()
                except (Exception, SystemExit) as e:
                    info.note(f"{hook} raised {describe(e)}")
                    continue
                if result is None:
                    continue
                problem = check(result, kwargs) if check else None
                if problem is not None:
                    info.note(f"{hook} returned {problem}; ignored it")
                    continue
                out.append((info.name, result))
        return out

    def _skip_hint(self, plugin: str) -> str:
        """How to get rid of ``plugin``: the variable, and the distribution to uninstall."""
        hint = f"{DENY_ENV}={plugin} skips it"
        info = self.infos.get(plugin)
        if info is not None and info.source == "entry point" and info.distribution:
            hint += f", pip uninstall {info.distribution} removes it"
        return hint

    def _note(self, plugin: str, message: str) -> None:
        info = self.infos.get(plugin)
        if info is not None:
            info.note(message)
        else:
            warn(f"plugin '{plugin}': {message}")


_VERSION: str | None = None


def _zoo_version() -> str:
    global _VERSION
    if _VERSION is None:
        from zoo.version import __version__

        _VERSION = __version__
    return _VERSION


def discover_entry_points() -> list[tuple[Any, str | None, str | None]]:
    """``(entry point, distribution, version)`` for group ``zoo``, sorted by name.

    Found through the discovery cache (:mod:`zoo.registry.discovery`): a few ``stat``
    calls when nothing was installed or removed since the last command.
    """
    out = []
    seen = set()
    for ep in discovery.entry_points(GROUP):
        # Two distributions declaring the same name are both kept, and the second is
        # reported as a duplicate.
        key = (ep.name, ep.value, ep.dist)
        if key in seen:
            continue
        seen.add(key)
        out.append((ep, ep.dist, ep.version))
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
    """Forget the process-wide plugin manager; the next get_plugins() loads plugins again."""
    global _PLUGINS, _PLUGINS_KEY
    _PLUGINS, _PLUGINS_KEY = None, None


# -- filling a registry ----------------------------------------------------------------------

def build_registry(catalogs: Iterable[Path] = (), plugins: Plugins | None = None):
    """Fill a fresh Registry from every loaded plugin, then from users' catalogs."""
    from zoo.registry.registry import Registry, add_user_catalogs

    plugins = plugins or get_plugins()
    reg = Registry()
    for info in plugins.infos.values():     # a rebuild starts from the loading's outcome
        n, failed = info._load_state
        info.models, info.errors, info.failed = [], info.errors[:n], failed
    with stdout_to_stderr():
        for hook in ("zoo_register_families", "zoo_register_models"):
            for info, call in plugins.call_each(hook, registry=reg):
                reg.begin(info.name)
                try:
                    returned = call()
                    if hook == "zoo_register_models" and returned is not None:
                        for item in returned_models(returned):
                            reg.add_model(item)
                except (Exception, SystemExit) as e:
                    # Out with all of it: what this hook staged, and what the plugin's
                    # earlier hooks committed.
                    reg.rollback()
                    reg.remove_plugin(info.name)
                    info.models.clear()
                    msg = f"{hook} raised {describe(e)}"
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
            if info is not None:
                info.warn(p)
            else:
                warn(f"plugin '{name}': {p}")
    add_user_catalogs(reg, catalogs)
    for info in plugins.infos.values():
        if info.disabled:
            continue
        # Load-time trouble (failed imports, refusals, slow imports, typos) is told once
        # per registry, like hook trouble.
        for err in info.errors[:info._load_state[0]]:
            info.warn(err)
    return reg
