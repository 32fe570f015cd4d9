"""What zoo accepts from data it did not write itself: saved directories and Hub repos.

A catalog and a plugin are code the user installed; a saved directory's ``config.json``
(a colleague's folder, a Hub repo) is data. From it zoo takes only what the installed
catalog entry allows (see docs/security.md):

* builder kwargs whose keys the catalog entry or one of its tags declares, with values of
  the declared JSON type (``true`` is not an integer); a string is the catalog's own value
  or names a file inside the directory;
* file arguments (``config["files"]``, or a string kwarg naming a file of the directory
  or ``package:IMPORT/PATH`` inside an installed package) that lie inside the directory
  (or package) after resolving links, for parameters the catalog declares or the plugin's
  own builder names (never a library factory's, such as
  ``timm.create_model(checkpoint_path=...)``);
* an input spec of bounded size and known dtype.

Anything else is refused in one line naming the key. Nothing here imports torch.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from zoo.errors import UsageError
from zoo.loading.paths import DIST_RE, install_hint  # noqa: F401 - re-exported
from zoo.registry.spec import InputSpec, ModelSpec

MAX_INPUT_ELEMENTS = 1 << 26            # one sample of a saved input spec: 64 Mi values
INPUT_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8")
DAMAGED = "the directory is damaged or was not written by zoo; save or fetch it again"


# -- builder kwargs from a saved directory ---------------------------------------------------

def declared_kwargs(spec: ModelSpec) -> dict[str, list[Any]]:
    """Every builder kwarg the catalog entry or one of its tags declares, with its values."""
    out: dict[str, list[Any]] = {}
    for source in (spec.kwargs, *(p.kwargs for p in spec.pretrained.values())):
        for key, value in source.items():
            out.setdefault(key, []).append(value)
    return out


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    return "null" if value is None else type(value).__name__


def _fits(value: Any, declared: list[Any]) -> bool:
    """``value`` has the JSON type of one of the ``declared`` values (recursively)."""
    kind = _kind(value)
    kinds = {_kind(d) for d in declared}
    if kind == "an integer" and abs(value) >= 2**63:
        return False                    # JSON allows any length; no size or count is that
    if kind == "an integer" and "a number" in kinds:
        return True
    if kind not in kinds:
        return False
    if kind == "a number":
        return math.isfinite(value)
    if kind == "a list":
        items = [x for d in declared if _kind(d) == "a list" for x in d]
        return all(_fits(x, items) for x in value) if items else not value
    if kind == "a table":
        tables = [d for d in declared if _kind(d) == "a table"]
        return all(any(k in t for t in tables)
                   and _fits(v, [t[k] for t in tables if k in t]) for k, v in value.items())
    return True


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _owned_parameters(spec: ModelSpec, fn: Callable[..., Any]) -> set[str]:
    """Parameters a plugin's (or zoo's) own builder names; none for a library's factory.

    A library factory such as ``timm.create_model`` names ``checkpoint_path`` and
    ``pretrained_cfg_overlay``, which read files of the caller's choosing: its parameter
    list is the library's, not something the catalog vouches for.
    """
    from zoo.registry.plugins import get_plugins

    module = getattr(fn, "__module__", None) or spec.builder_path.partition(":")[0]
    top = module.partition(".")[0]
    owners = {"zoo"} | {info.module.partition(".")[0] for info in get_plugins().infos.values()}
    if top not in owners:
        return set()
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def containment_root(directory: Path) -> Path:
    """The folder whose files a saved directory may name, links resolved.

    The directory itself; for a snapshot in huggingface_hub's cache
    (``models--ORG--NAME/snapshots/COMMIT``), the repo's cache folder, whose ``blobs/``
    the snapshot's links point into.
    """
    from zoo.loading.sources import hf_cache_dir

    root = directory.resolve()
    try:
        cache = hf_cache_dir().resolve()
    except (OSError, RuntimeError):
        return root
    parent = root.parent
    if parent.name == "snapshots" and parent.parent.parent == cache \
            and parent.parent.name.startswith("models--"):
        return parent.parent
    return root


def inside(directory: Path, rel: Any, what: str, *, root: Path | None = None) -> Path:
    """The file ``rel`` (relative, from config.json) of ``directory``, which must lie inside
    it after resolving links (``root``: see :func:`containment_root`)."""
    cfg = directory / "config.json"
    if not isinstance(rel, str) or not rel or "\0" in rel or Path(rel).is_absolute() \
            or ".." in Path(rel).parts:
        raise UsageError(f"{cfg}: {what} must be a relative file name inside the directory, "
                         f"got {_short(rel)}; {DAMAGED}")
    path = directory / rel
    root = root if root is not None else containment_root(directory)
    try:
        real = path.resolve()
    except (OSError, RuntimeError) as e:
        raise UsageError(f"{cfg}: {what} {rel!r} cannot be resolved ({e}); {DAMAGED}") from None
    if real != root and root not in real.parents:
        raise UsageError(f"{cfg}: {what} {rel!r} is a link to {real}, outside the directory; "
                         "zoo reads only the directory's own files")
    return path


def _location(root: Path, directory: Path, value: str) -> str | None:
    """What a string file argument may name: an existing file or folder of the directory
    (returned as its resolved path), or a ``package:IMPORT/PATH`` inside an installed
    Python package (returned as is); ``None`` for anything else."""
    if value.startswith("package:"):
        return value if _in_package(value[len("package:"):]) else None
    text = value.removeprefix("file:")
    if not text or "\0" in text:
        return None
    p = Path(text)
    if not p.is_absolute():
        p = directory / p
    try:
        real = p.resolve()
        if not real.exists():
            return None
    except (OSError, RuntimeError, ValueError):
        return None
    return str(real) if real == root or root in real.parents else None


def _in_package(location: str) -> bool:
    """``IMPORT/PATH`` names a file or folder inside that installed package (links
    resolved), found without importing it."""
    from importlib.util import find_spec

    pkg, _, rel = location.partition("/")
    if not pkg.isidentifier() or not rel or "\0" in rel or Path(rel).is_absolute() \
            or ".." in Path(rel).parts:
        return False
    try:
        spec = find_spec(pkg)
    except (ImportError, ValueError):
        return False
    for base in (spec.submodule_search_locations or []) if spec else []:
        try:
            top, real = Path(base).resolve(), (Path(base) / rel).resolve()
        except (OSError, RuntimeError):
            continue
        if real.exists() and top in real.parents:
            return True
    return False


def checked_kwargs(directory: str | os.PathLike[str], config: Mapping[str, Any],
                   spec: ModelSpec, fn: Callable[..., Any]) -> dict[str, Any]:
    """The builder kwargs of a saved directory, as the catalog entry ``spec`` allows them.

    ``config`` is the directory's ``config.json`` (``kwargs`` a table, ``files`` a table
    or absent); ``fn`` the catalog builder it will call. File arguments come back as paths
    inside the directory.

    Raises:
        UsageError: a key the catalog does not declare, a value of another type, a string
            that is neither the catalog's value nor a file of the directory; one line
            naming the key.
    """
    d = Path(directory)
    cfg = d / "config.json"
    kwargs, files = config["kwargs"], config.get("files") or {}
    if not isinstance(kwargs, Mapping) or not isinstance(files, Mapping):
        raise UsageError(f"{cfg}: 'kwargs' and 'files' must be tables; {DAMAGED}")
    root = containment_root(d)
    declared = declared_kwargs(spec)
    named = _owned_parameters(spec, fn)
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in files:
            continue                        # the bundled file below wins
        if key not in declared:
            found = _location(root, d, value) if key in named and isinstance(value, str) \
                else None
            if found is None:
                raise UsageError(
                    f"{cfg}: kwargs.{key} is not a builder argument the catalog declares for "
                    f"'{spec.name}'; a saved model may only set those ({_names(declared)})")
            out[key] = found
            continue
        values = declared[key]
        if not _fits(value, values):
            kinds = " or ".join(sorted({_kind(v) for v in values}))
            raise UsageError(f"{cfg}: kwargs.{key} must be {kinds}, as the catalog declares "
                             f"for '{spec.name}', got {_short(value)}; {DAMAGED}")
        if isinstance(value, str) and value not in values:
            found = _location(root, d, value)
            if found is None:
                raise UsageError(
                    f"{cfg}: kwargs.{key} = {_short(value)} is neither the catalog's value "
                    f"({', '.join(_short(v) for v in values)}) nor a file inside the "
                    "directory; zoo reads only the directory's own files")
            value = found
        out[key] = value
    for key, rel in files.items():
        # a file argument: declared as a string, or (undeclared) named by the builder
        if not (any(isinstance(v, str) for v in declared[key]) if key in declared
                else key in named):
            raise UsageError(f"{cfg}: files.{key} is not a file argument of '{spec.name}' "
                             f"(its catalog entry and builder name none such); {DAMAGED}")
        out[key] = str(inside(d, rel, f"files.{key}", root=root))
    return out


def _names(declared: Mapping[str, Any]) -> str:
    names = sorted(declared)
    return ", ".join(names) if names else "none"


# -- a saved input spec ----------------------------------------------------------------------

def saved_input(config: Mapping[str, Any], where: str) -> InputSpec | None:
    """The ``input`` table of a saved config as an :class:`InputSpec` (or ``None``).

    Sizes are positive integers whose product is bounded (a forward pass on it must fit in
    memory); dtype is one of :data:`INPUT_DTYPES`; mean and std are lists of numbers.
    """
    d = config.get("input")
    if d is None:
        return None
    bad = f"{where}: 'input' {{}}; {DAMAGED}"
    if not isinstance(d, Mapping):
        raise UsageError(bad.format("must be a table"))
    unknown = set(d) - {"size", "dtype", "mean", "std", "interpolation", "invert", "center"}
    if unknown:
        raise UsageError(bad.format(f"has unknown key {_short(sorted(unknown)[0])}"))
    size = d.get("size")
    if not isinstance(size, list) or not size or len(size) > 8 or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in size) \
            or math.prod(size) > MAX_INPUT_ELEMENTS:
        raise UsageError(bad.format("size must be 1 to 8 positive integers of at most "
                                    f"{MAX_INPUT_ELEMENTS:,} values in all"))
    dtype = d.get("dtype") or "float32"
    if dtype not in INPUT_DTYPES:
        raise UsageError(bad.format(f"dtype must be one of {', '.join(INPUT_DTYPES)}"))
    stats = {}
    for key in ("mean", "std"):
        v = d.get(key)
        if v is not None and (not isinstance(v, list) or len(v) > 64 or not all(
                isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
                for x in v)):
            raise UsageError(bad.format(f"{key} must be a list of numbers"))
        stats[key] = tuple(v) if v is not None else None
    interp, invert = d.get("interpolation"), d.get("invert")
    if interp is not None and not (isinstance(interp, str) and interp.isidentifier()):
        raise UsageError(bad.format("interpolation must be a name such as 'bilinear'"))
    if invert is not None and not isinstance(invert, bool):
        raise UsageError(bad.format("invert must be true or false"))
    center = d.get("center")
    if center is not None and not isinstance(center, bool):
        raise UsageError(bad.format("center must be true or false"))
    return InputSpec(size=tuple(size), dtype=dtype, mean=stats["mean"], std=stats["std"],
                     interpolation=interp, invert=invert, center=center)


def saved_labels(config: Mapping[str, Any], where: str) -> list[str] | None:
    """The ``labels`` of a saved config: a list of distinct strings, or ``None``."""
    labels = config.get("labels")
    if labels is None:
        return None
    if not isinstance(labels, list) or not labels or len(labels) > 100_000 or not all(
            isinstance(x, str) and 0 < len(x) <= 200 for x in labels):
        raise UsageError(f"{where}: 'labels' must be a list of class names (strings), got "
                         f"{_short(labels)}; {DAMAGED}")
    # the same name twice is data, not damage: ImageNet's 1000 classes hold two 'crane's
    return labels


def saved_tag(config: Mapping[str, Any], spec: ModelSpec, where: str) -> str | None:
    """The ``tag`` of a saved config: ``None`` or one of the catalog entry's tags."""
    tag = config.get("tag")
    if tag is None or (isinstance(tag, str) and tag in spec.pretrained):
        return tag
    raise UsageError(f"{where}: 'tag' {_short(tag)} is not a trained model of "
                     f"'{spec.name}'; {DAMAGED}")
