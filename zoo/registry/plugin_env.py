"""Which plugins load, and how long they may take: the plugin environment variables.

``ZOO_PLUGINS`` (allow-list of entry-point plugins; set but empty: none) and
``ZOO_DISABLE_PLUGINS`` (never load these, built-in ones included) take plugin names or
distribution names (``zoo-vae`` and ``zoo_vae`` alike: all of that distribution's
plugins). A name that is neither gets one warning line listing the plugins there are.
``ZOO_PLUGIN_SLOW_SECONDS`` and ``ZOO_PLUGIN_IMPORT_TIMEOUT`` are documented in
:mod:`zoo.registry.plugins`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from zoo.registry import discovery

ALLOW_ENV = "ZOO_PLUGINS"
DENY_ENV = "ZOO_DISABLE_PLUGINS"
SLOW_ENV = "ZOO_PLUGIN_SLOW_SECONDS"
TIMEOUT_ENV = "ZOO_PLUGIN_IMPORT_TIMEOUT"
DEFAULT_SLOW_SECONDS = 1.0
DEFAULT_IMPORT_TIMEOUT = 10.0


def warn(message: str) -> None:
    """One line on stderr; plugin trouble never stops a command."""
    print(f"zoo: warning: {message}", file=sys.stderr)


def env_key() -> tuple[str | None, ...]:
    """The plugin variables' values: plugins (and registries) are reloaded when it changes."""
    return (os.environ.get(ALLOW_ENV), os.environ.get(DENY_ENV), os.environ.get(SLOW_ENV),
            os.environ.get(TIMEOUT_ENV))


def names(var: str) -> set[str] | None:
    """The comma-separated names in ``var``; ``None`` when it is not set."""
    value = os.environ.get(var)
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


def named(given: set[str], name: str, dist: str | None) -> bool:
    """Whether a plugin variable's names name this entry-point plugin: by its plugin
    name, or by its distribution's (``zoo-vae`` or ``zoo_vae``: all its plugins)."""
    return name in given or (dist is not None and discovery.normalize(dist) in
                             {discovery.normalize(n) for n in given})


def seconds(var: str, default: float) -> float:
    """``var`` as seconds; a value that is no number is warned about and ``default`` used."""
    value = os.environ.get(var, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        warn(f"{var}={value!r} is not a number of seconds; using {default:g}")
        return default


def check_names(infos: Iterable[Any], deny: set[str], allow: set[str] | None) -> None:
    """Warn about names in the plugin variables that name no plugin and no distribution."""
    infos = list(infos)
    known = {i.name for i in infos} | {discovery.normalize(i.distribution) for i in infos
                                       if i.distribution and i.source == "entry point"}
    for var, given in ((DENY_ENV, deny), (ALLOW_ENV, allow or set())):
        for name in sorted(n for n in given if discovery.normalize(n) not in known
                           and n not in known):
            own = any(i.source == "built-in" and i.distribution
                      and discovery.normalize(i.distribution) == discovery.normalize(name)
                      for i in infos)
            plugins = ", ".join(sorted(i.name for i in infos if " (" not in i.name))
            warn(f"{var} names '{name}', "
                 + ("zoo's own distribution: name its built-in plugins one by one"
                    if own else "which is no installed plugin or plugin distribution")
                 + f"; plugins: {plugins}")
