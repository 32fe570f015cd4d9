"""Local locations a catalog may name: ``package:IMPORT_NAME/PATH``, ``file:PATH``, a path.

Used by the pretrained sources (``package:`` weights) and by builders whose arguments name
files (vocabularies, tokenizers, base weights).
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

from zoo.errors import WeightsError


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

        dist = DISTRIBUTION if pkg == "zoo" else pkg.replace("_", "-")
        raise WeightsError(f"package:{location}: Python package '{pkg}' is not installed; "
                           f"install it (pip install {dist})")
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
