"""Which disabled plugin would have provided an unknown model name, found without loading it.

A disabled plugin is never imported (that is the point of disabling it), so its models
are unknown. When a name is not in the registry, this looks in the places that can be
read as data: a built-in family's models in zoo's own catalog, the catalog TOML files a
plugin ships inside its package (the documented way to declare models), and a
``PLUGIN/NAME`` prefix. Only the error path calls it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

MAX_TOML_FILES = 20
MAX_TOML_BYTES = 2_000_000


@dataclass(frozen=True)
class DisabledPlugin:
    """What the registry remembers of a plugin that was not loaded, and why."""

    name: str
    module: str                 # the entry point's value, "pkg.mod" or "pkg.mod:obj"
    distribution: str | None
    builtin: bool
    variable: str               # the variable that left it out: ZOO_DISABLE_PLUGINS or ZOO_PLUGINS
    value: str                  # its value then
    allow_list: bool            # ``variable`` lists what loads (rather than what does not)


def disabled_plugins(infos: Iterable, *, deny_var: str, allow_var: str) -> list[DisabledPlugin]:
    """The disabled plugins among ``PluginInfo`` records, and which variable disabled them
    (the names of the variables are the plugin loader's, passed in: this module sits below it).
    """
    denied = os.environ.get(deny_var, "")
    deny = {_normal(v.strip()) for v in denied.split(",") if v.strip()}
    out = []
    for i in infos:
        if not i.disabled:
            continue
        by_deny = bool({_normal(i.name), _normal(i.distribution)} & deny)
        var = deny_var if by_deny else allow_var
        out.append(DisabledPlugin(name=i.name, module=i.module, distribution=i.distribution,
                                  builtin=i.source == "built-in", variable=var,
                                  value=os.environ.get(var, ""), allow_list=not by_deny))
    return out


def provider(name: str, plugins: Iterable[DisabledPlugin]) -> DisabledPlugin | None:
    """The disabled plugin that declares model ``name`` (or its ``PLUGIN/`` prefix), else None."""
    plugins = list(plugins)
    prefix, slash, _ = name.partition("/")
    for p in plugins:
        if slash and prefix in (p.name, _normal(p.distribution)):
            return p
    for p in plugins:
        if name in _declared_models(p):
            return p
    return None


def hint(name: str, plugin: DisabledPlugin) -> str:
    """One sentence: which plugin provides ``name``, that it is disabled, how to enable it."""
    who = f"plugin '{plugin.name}'" + (f" ({plugin.distribution})" if plugin.distribution
                                       and not plugin.builtin else "")
    var, value = plugin.variable, plugin.value
    listed = [v.strip() for v in value.split(",") if v.strip()]
    if plugin.allow_list:
        return (f"It comes from {who}, which {var}={value} leaves out; set "
                f"{var}={','.join([*listed, plugin.name])} to load it")
    mine = {_normal(plugin.name), _normal(plugin.distribution)}
    others = [v for v in listed if _normal(v) not in mine]
    fix = f"set {var}={','.join(others)}" if others else f"unset {var}"
    return f"It comes from {who}, disabled by {var}={value}; {fix} to enable it"


def _normal(dist: str | None) -> str | None:
    """A distribution name as a model prefix would spell it (``zoo-vae`` -> ``zoo-vae``)."""
    return re.sub(r"[._]+", "-", dist).lower() if dist else None


def _declared_models(plugin: DisabledPlugin) -> set[str]:
    """Model names in the catalogs the plugin ships (a built-in: its family in zoo's)."""
    if plugin.builtin:
        from zoo.registry.catalog import BUILTIN_CATALOG, load_catalog

        try:
            return {s.name for s in load_catalog(BUILTIN_CATALOG, plugin=plugin.name,
                                                 family=plugin.name)}
        except Exception:   # noqa: BLE001 - a hint must never turn into another error
            return set()
    names: set[str] = set()
    for path in _shipped_tomls(plugin.module):
        try:
            if path.stat().st_size > MAX_TOML_BYTES:
                continue
            import tomllib  # the error path only: every registry build imports this module

            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, ValueError):
            continue
        models = data.get("models")
        if isinstance(models, dict):
            names.update(k.lower() for k in models if isinstance(k, str))
    return names


def _shipped_tomls(module: str) -> list[Path]:
    """TOML files inside the plugin's top-level package, found without importing it."""
    top = module.partition(":")[0].split(".")[0].strip()
    try:
        spec = find_spec(top) if top.isidentifier() else None
    except (ImportError, ValueError):
        spec = None
    roots = list(spec.submodule_search_locations or []) if spec else []
    out: list[Path] = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "__"))]
            out += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(".toml")]
            if len(out) >= MAX_TOML_FILES:
                return out[:MAX_TOML_FILES]
    return out
