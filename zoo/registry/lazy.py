"""Lazy ``"module:attr"`` references, as the catalog stores builders and hooks.

Imported on first use only, so that listing never imports a model library.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from zoo.errors import BuildError


def import_object(path: str, *, what: str) -> Any:
    """Import ``"package.module:attr.sub"``; raise BuildError naming ``what`` on failure."""
    module_name, _, attr = path.partition(":")
    try:
        obj: Any = import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise BuildError(f"{what}: cannot import '{path}' ({type(e).__name__}: {e}); install "
                         "the package that provides it or fix the catalog") from None
    return obj
