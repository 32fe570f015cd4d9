"""The process-wide registry: built-in and entry-point plugins plus users' catalogs.

This sits above :mod:`zoo.registry.registry` (the Registry class) and
:mod:`zoo.registry.plugins` (plugin loading), which both stay ignorant of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zoo.registry import plugins
from zoo.registry.plugins import build_registry
from zoo.registry.registry import CATALOG_ENV, Registry, add_user_catalogs, user_catalogs

__all__ = ["CATALOG_ENV", "add_user_catalogs", "default_registry", "reset_default",
           "user_catalogs"]

_DEFAULT: Registry | None = None
# (ZOO_CATALOG, the plugin variables, the catalogs given): what _DEFAULT was built from.
_DEFAULT_KEY: tuple[Any, ...] | None = None


def default_registry(catalogs: Iterable[str | os.PathLike[str]] | None = None) -> Registry:
    """The process-wide registry: built-in and entry-point plugins plus user catalogs.

    ``catalogs`` adds catalog files to those named by ``ZOO_CATALOG``; ``None`` keeps the
    ones the registry was last built with. Rebuilt only when that set or the plugin
    variables change.
    """
    global _DEFAULT, _DEFAULT_KEY
    # zoo.get calls this on every build: the key is the raw variables (~1 us to read);
    # they become paths only when the registry is (re)built.
    if catalogs is None:
        given = _DEFAULT_KEY[2] if _DEFAULT is not None and _DEFAULT_KEY else ()
    else:
        given = tuple(Path(c) for c in catalogs)
    key = (os.environ.get(CATALOG_ENV), plugins.env_key(), given)
    if _DEFAULT is None or key != _DEFAULT_KEY:
        from zoo.registry.disabled import disabled_plugins

        reg = build_registry(user_catalogs(given))
        reg.disabled = disabled_plugins(plugins.get_plugins().infos.values(),
                                        deny_var=plugins.DENY_ENV, allow_var=plugins.ALLOW_ENV)
        _DEFAULT, _DEFAULT_KEY = reg, key
    return _DEFAULT


def reset_default() -> None:
    """Forget the process-wide registry (tests, and after installing a plugin)."""
    global _DEFAULT, _DEFAULT_KEY
    _DEFAULT, _DEFAULT_KEY = None, None
    plugins.reset()
