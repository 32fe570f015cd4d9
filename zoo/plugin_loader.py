"""Load plugins, built-in and third-party, each on its own, and call their hooks safely.

Built-in families are plugins exactly like third-party ones; they are listed in
``BUILTIN_PLUGINS`` and registered first, so a third-party model can never take a
built-in name. Third-party plugins come from the ``zoo`` entry-point group. Each is
imported and called inside its own ``try``: a plugin that fails to import, registers a
bad hook or raises inside a hook is reported (stderr and ``zoo plugins``) and skipped.

Environment:
    ``ZOO_PLUGINS``: comma-separated allow-list of entry-point plugins to load
    (set but empty: load none).
    ``ZOO_DISABLE_PLUGINS``: comma-separated plugins (built-in or not) never to load.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError, ZooError

ALLOW_ENV = "ZOO_PLUGINS"
DENY_ENV = "ZOO_DISABLE_PLUGINS"
GROUP = "zoo"

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

    @property
    def status(self) -> str:
        if self.disabled:
            return "disabled"
        if self.failed or not self.loaded:
            return "error"
        return "warning" if self.errors else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "status": self.status}


def env_key() -> tuple[str | None, str | None]:
    return os.environ.get(ALLOW_ENV), os.environ.get(DENY_ENV)


def _names(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


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
        if builtins:
            for name, module in BUILTIN_PLUGINS:
                info = PluginInfo(name=name, module=module, source="built-in",
                                  distribution="zoo", version=_zoo_version())
                self._load_one(info, lambda m=module: import_module(m), disabled=name in deny)
        if entry_points:
            for ep, dist, version in discover_entry_points():
                info = PluginInfo(name=ep.name, module=ep.value, source="entry point",
                                  distribution=dist, version=version)
                if ep.name in self.infos:
                    other = self.infos[ep.name]
                    info.errors.append(
                        f"plugin name '{ep.name}' from {dist} is already taken by "
                        f"{other.distribution or other.source}; rename its entry point")
                    self.infos[f"{ep.name} ({dist})"] = info
                    continue
                off = ep.name in deny or (allow is not None and ep.name not in allow)
                self._load_one(info, ep.load, disabled=off)

    def register_object(self, name: str, plugin: Any, *, source: str = "code") -> PluginInfo:
        """Register an already imported plugin object (tests, notebooks)."""
        info = PluginInfo(name=name, module=getattr(plugin, "__name__", repr(plugin)),
                          source=source)
        self._load_one(info, lambda: plugin, disabled=False)
        return info

    def _load_one(self, info: PluginInfo, load, *, disabled: bool) -> None:
        self.infos[info.name] = info
        if disabled:
            info.disabled = True
            return
        try:
            obj = load()
        except (Exception, SystemExit) as e:
            info.errors.append(f"failed to import: {_describe(e)}")
            info.failed = True
            return
        typos = _unknown_hooks(obj)
        try:
            self.pm.register(obj, name=info.name)
        except Exception as e:
            info.errors.append(f"refused: {_describe(e)}")
            info.failed = True
            return
        info.errors.extend(typos)
        info.loaded = True

    # -- calling hooks -----------------------------------------------------------------

    def _impls(self, hook: str, plugin: str):
        caller = getattr(self.pm.hook, hook)
        return [i for i in caller.get_hookimpls() if i.plugin_name == plugin]

    def call_each(self, hook: str, **kwargs: Any) -> Iterator[tuple[PluginInfo, Any]]:
        """Call ``hook`` plugin by plugin in load order; yield ``(info, impl, kwargs)`` callers.

        Each yielded item is ``(info, call)`` where ``call()`` runs that plugin's impl.
        """
        for info in list(self.infos.values()):
            if not info.loaded:
                continue
            for impl in self._impls(hook, info.name):
                args = {a: kwargs[a] for a in impl.argnames if a in kwargs}
                yield info, (lambda f=impl.function, a=args: f(**a))

    def first_result(self, hook: str, **kwargs: Any) -> tuple[Any, str | None]:
        """Call a firstresult hook in pluggy's order; return ``(result, plugin name)``.

        A plugin's own ``ZooError`` propagates; any other exception becomes a
        :class:`PluginError` naming the plugin.
        """
        caller = getattr(self.pm.hook, hook)
        for impl in reversed(caller.get_hookimpls()):
            args = {a: kwargs[a] for a in impl.argnames if a in kwargs}
            try:
                result = impl.function(**args)
            except ZooError:
                raise
            except Exception as e:
                raise PluginError(impl.plugin_name, f"{hook} raised {_describe(e)}") from e
            if result is not None:
                return result, impl.plugin_name
        return None, None

    def collect(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a plain hook on every plugin; return ``[(plugin, result)]`` of those that answered.

        A failing plugin is reported on stderr and skipped.
        """
        out = []
        for info, call in self.call_each(hook, **kwargs):
            try:
                result = call()
            except Exception as e:
                msg = f"{hook} raised {_describe(e)}"
                info.errors.append(msg)
                warn(f"plugin '{info.name}': {msg}")
                continue
            if result is not None:
                out.append((info.name, result))
        return out


def _describe(e: BaseException) -> str:
    """``Type: message`` on one line (multi-line messages joined), at most 300 characters."""
    text = "; ".join(ln.strip() for ln in str(e).splitlines() if ln.strip())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _unknown_hooks(obj: Any) -> list[str]:
    """Functions named ``zoo_*`` that match no hook: almost always a typo."""
    out = []
    for attr in dir(obj):
        if attr.startswith("zoo_") and attr not in HOOK_NAMES \
                and callable(getattr(obj, attr, None)):
            close = difflib.get_close_matches(attr, HOOK_NAMES, n=1)
            out.append(f"defines '{attr}', which is no zoo hook"
                       + (f"; did you mean '{close[0]}'?" if close else ""))
    return out


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
        key = (ep.name, ep.value)
        if key in seen:  # the same dist seen twice on sys.path
            continue
        seen.add(key)
        out.append((ep, dist.name if dist else None, dist.version if dist else None))
    out.sort(key=lambda t: t[0].name)
    return out


_PLUGINS: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugin manager, loading plugins on first use."""
    global _PLUGINS
    if _PLUGINS is None:
        _PLUGINS = Plugins()
        _PLUGINS.load()
    return _PLUGINS


def reset() -> None:
    global _PLUGINS
    _PLUGINS = None


def _add_returned(reg, returned: Any) -> None:
    """Plugins may also return their models (specs or field dicts) instead of adding them."""
    from .spec import ModelSpec

    items = [returned] if isinstance(returned, ModelSpec | dict) else list(returned)
    for item in items:
        if isinstance(item, ModelSpec):
            reg.add_model(item)
        elif isinstance(item, dict):
            reg.add_model(**item)
        else:
            raise TypeError(f"zoo_register_models returned a {type(item).__name__}; return "
                            "ModelSpecs or dicts of catalog fields, or call registry.add_model")


def build_registry(catalogs: Iterable[Path] = (), plugins: Plugins | None = None):
    """Fill a fresh Registry from every loaded plugin, then from users' catalogs."""
    from .registry import Registry, add_user_catalogs

    plugins = plugins or get_plugins()
    reg = Registry()
    for hook in ("zoo_register_families", "zoo_register_models"):
        for info, call in plugins.call_each(hook, registry=reg):
            reg.begin(info.name)
            try:
                returned = call()
                if hook == "zoo_register_models" and returned is not None:
                    _add_returned(reg, returned)
            except Exception as e:
                reg.rollback()
                msg = f"{hook} raised {_describe(e)}"
                if isinstance(e, ZooError):
                    msg = f"{hook} failed: {e}"
                info.errors.append(msg)
                info.failed = True
                warn(f"plugin '{info.name}': {msg}")
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
        if not info.loaded and not info.disabled:
            for err in info.errors:
                warn(f"plugin '{info.name}': {err}")
    return reg
