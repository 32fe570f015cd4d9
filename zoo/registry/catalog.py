"""Parse and validate catalog files (``registry.toml`` and users' own) into ModelSpecs.

Parsing uses :mod:`tomllib` only, never torch; validation is :mod:`zoo.registry.validate`.
Every problem becomes one :class:`~zoo.errors.CatalogError` naming the file, the line, the
model and the fix. Validated catalogs are cached on disk (:mod:`zoo.registry.cache`), so
a large user catalog costs its parse once. Only a regular file of at most
``MAX_CATALOG_BYTES`` is read (a FIFO or ``/dev/zero`` named as a catalog is refused, not
waited on or read forever).

A catalog's models come back as :class:`~zoo.registry.spec.LazySpec` records: the fields a
listing shows, and the validated entry that becomes the full ModelSpec on first use of
any other field. A 10,000-entry catalog is listed without building 10,000 ModelSpecs,
whether it was just parsed or read back from the cache.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.atomic import read_regular, unreadable
from zoo.errors import CatalogError
from zoo.registry.cache import read_catalog, store_catalog
from zoo.registry.spec import (
    NAME_RE,
    InputSpec,
    LazySpec,
    ModelSpec,
    PretrainedSpec,
    freeze,
    thaw,
)
from zoo.registry.validate import (  # noqa: F401 - also zoo.registry.catalog's public names
    DTYPES,
    FINETUNE_KEYS,
    INPUT_KEYS,
    MODEL_KEYS,
    PRETRAINED_KEYS,
    REQUIRED_MODEL_KEYS,
    SCHEMES,
    _Lines,
    check_source,
    validate_catalog,
)

#: The largest catalog file zoo reads (a 100,000-entry catalog is ~40 MB).
MAX_CATALOG_BYTES = 256 * 2**20

#: The catalog of built-in models, shared by the built-in family plugins.
BUILTIN_CATALOG = Path(__file__).parent.parent / "registry.toml"

# Work already done in this process: the built-in plugins share one file.
_RAW_MEMO: dict[tuple[Any, ...], list[tuple[str, dict[str, Any]]]] = {}
_MEMO: dict[tuple[Any, ...], list[ModelSpec]] = {}


def load_catalog(path: str | os.PathLike[str], *, plugin: str | None = None,
                 family: str | None = None, cache: bool = True) -> list[ModelSpec]:
    """Read a catalog file into validated ModelSpecs.

    Args:
        path: the TOML file.
        plugin: recorded on each spec as the plugin that registered it.
        family: keep only models of this family (built-in plugins share one file).
        cache: reuse the on-disk cache of this file's parse when it is still fresh.

    Raises:
        CatalogError: the file is missing, is not TOML, or an entry is invalid.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise CatalogError(f"cannot read catalog ({e.strerror}); check the path", path=str(p)) \
            from None
    problem = unreadable(st, MAX_CATALOG_BYTES)
    if problem:
        raise CatalogError(f"cannot read catalog: {problem}; name a TOML file of at most "
                           f"{MAX_CATALOG_BYTES // 2**20} MiB", path=str(p))
    # ctime and inode too: an edit that keeps the size and puts the mtime back is an edit.
    memo_key = (str(p), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, plugin, family)
    specs = _MEMO.get(memo_key)
    if specs is None:
        with _no_gc():
            specs = _load(p, st, memo_key, plugin=plugin, family=family, cache=cache)
    return list(specs)


def _load(p: Path, st: os.stat_result, memo_key: tuple[Any, ...], *, plugin: str | None,
          family: str | None, cache: bool) -> list[ModelSpec]:
    origin = str(p)
    cached = read_catalog(p, st, plugin, family) if cache else None
    specs = None
    if cached is not None:
        rows, records = cached
        unpack = functools.partial(_unpack_cached, records)
        try:
            specs = [LazySpec.make(row, plugin, origin, row[8], unpack) for row in rows]
        except (ValueError, TypeError, IndexError):
            specs = None           # rows of another shape: parse again
    if specs is None:
        raw = _RAW_MEMO.get(memo_key[:5])
        if raw is None:
            raw = _RAW_MEMO[memo_key[:5]] = _parse(p)
        chosen = [(name, f) for name, f in raw if family is None or f["family"] == family]
        rows = [_listing(name, f) for name, f in chosen]
        specs = [LazySpec.make(row, plugin, origin, f, _unpack)
                 for row, (_, f) in zip(rows, chosen, strict=True)]
        if cache:
            store_catalog(p, st, plugin, family, rows, [f for _, f in chosen])
    _MEMO[memo_key] = specs
    return specs


def _listing(name: str, f: dict[str, Any]) -> list[Any]:
    """An entry's listing fields (:data:`zoo.registry.spec.LISTING_FIELDS`), as JSON values."""
    pre = f["pretrained"]
    return [name, f["family"], f["task"], f.get("params"),
            float(f["gflops"]) if "gflops" in f else None, f.get("description"),
            list(pre), sorted({p["task"] for p in pre.values() if p.get("task")})]


def _unpack(d: dict[str, Any]) -> ModelSpec:
    """The full ModelSpec of a freshly parsed LazySpec's ``__dict__`` (its record: the
    entry's validated fields)."""
    return _to_spec(d["name"], d["_blob"], d["plugin"], origin=d["origin"])


def _unpack_cached(records: Any, d: dict[str, Any]) -> ModelSpec:
    """The same for a LazySpec read from the cache (its record: an offset in ``records``)."""
    return _to_spec(d["name"], records.at(d["_blob"]), d["plugin"], origin=d["origin"])


@contextlib.contextmanager
def _no_gc():
    """Pause the cyclic GC: building thousands of small records otherwise triggers it
    again and again for nothing (halves the load time of a 10,000-entry catalog)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _parse(p: Path) -> list[tuple[str, dict[str, Any]]]:
    """Parse and validate the file; return ``[(name, normalised fields), ...]``."""
    import tomllib  # not needed when the cache answers (~4 ms)

    try:
        # A regular file of bounded size only, checked on the open file (it may have been
        # swapped for a FIFO since the stat).
        text = read_regular(p, MAX_CATALOG_BYTES).decode("utf-8-sig")   # Windows BOMs
    except (OSError, UnicodeDecodeError) as e:
        raise CatalogError(f"cannot read catalog ({e}); check the path and encoding",
                           path=str(p)) from None
    try:
        data = tomllib.loads(text)
    except RecursionError:
        # tomllib recurses once per nesting level: '[[[[...' would escape as RecursionError
        raise CatalogError("invalid TOML: arrays or tables nested too deeply; fix the file",
                           path=str(p)) from None
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line = int(m.group(1)) if m else None
        if m is None and "(at end of document)" in msg:
            line = max(1, len(text.splitlines()))   # still name a line to look at
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg) if m else msg
        raise CatalogError(f"invalid TOML: {msg}; fix the syntax at that line",
                           path=str(p), line=line) from None
    lines = _Lines(text)
    return validate_catalog(data, path=str(p), lines=lines)


def _input(d: Mapping[str, Any] | None) -> InputSpec | None:
    if not d:
        return None
    return InputSpec(
        size=tuple(d["size"]), dtype=d.get("dtype") or "float32",
        mean=tuple(d["mean"]) if d.get("mean") is not None else None,
        std=tuple(d["std"]) if d.get("std") is not None else None,
        interpolation=d.get("interpolation"), invert=d.get("invert"),
        center=d.get("center"),
    )


def _to_spec(name: str, f: Mapping[str, Any], plugin: str | None, *,
             origin: str | None) -> ModelSpec:
    pretrained = {
        tag: PretrainedSpec(
            tag=tag, source=p["source"], sha256=p.get("sha256"),
            kwargs=freeze(p.get("kwargs", {})),
            labels=tuple(p["labels"]) if "labels" in p else None,
            input=_input(p.get("input")), dataset=p.get("dataset"),
            metrics=freeze(p.get("metrics", {})), license=p.get("license"),
            description=p.get("description"), default=p.get("default", False),
            task=p.get("task"), demo=p.get("demo"), params=p.get("params"),
            gflops=float(p["gflops"]) if "gflops" in p else None,
        )
        for tag, p in f["pretrained"].items()
    }
    return ModelSpec(
        name=name, family=f["family"], task=f["task"], builder=f["builder"],
        kwargs=freeze(f.get("kwargs", {})), input=_input(f.get("input")),
        description=f.get("description"), paper=f.get("paper"), paper_url=f.get("paper_url"),
        year=f.get("year"), license=f.get("license"), params=f.get("params"),
        gflops=float(f["gflops"]) if "gflops" in f else None, tags=tuple(f.get("tags", ())),
        finetune=freeze(f.get("finetune", {})), demo=f.get("demo"),
        pretrained=freeze(pretrained), plugin=plugin, origin=origin,
    )



def spec_from_fields(name: str, fields: Mapping[str, Any], *, plugin: str | None,
                     origin: str | None = None) -> ModelSpec:
    """Validate keyword fields given in code (``registry.add_model(name=..., ...)``) exactly
    as a catalog table is validated, and build the ModelSpec.

    ``builder`` may be a callable here; ``input`` and ``pretrained`` may be dicts or
    InputSpec / PretrainedSpec records.

    Raises:
        CatalogError: naming the model and what to fix.
    """
    from dataclasses import asdict
    from dataclasses import fields as dc_fields

    f = dict(fields)
    builder = f.get("builder")
    if callable(builder):
        f["builder"] = "placeholder.module:callable"
    if isinstance(f.get("input"), InputSpec):
        f["input"] = {k: (list(v) if isinstance(v, tuple) else v)
                      for k, v in asdict(f["input"]).items() if v is not None}
    pre = f.get("pretrained")
    if isinstance(pre, Mapping):
        conv = {}
        for tag, p in pre.items():
            if isinstance(p, PretrainedSpec):
                p = {fl.name: getattr(p, fl.name) for fl in dc_fields(p)
                     if fl.name != "tag" and getattr(p, fl.name) not in (None, (), {}, False)}
                if isinstance(p.get("input"), InputSpec):
                    p["input"] = {k: v for k, v in asdict(p["input"]).items() if v is not None}
            conv[tag] = thaw(p)
        f["pretrained"] = conv
    f = thaw(f)
    where_from = origin or plugin or "<code>"
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise CatalogError("invalid model name; use lowercase letters, digits, '_' and '-' "
                           "(optionally NAMESPACE/NAME), no dots", path=where_from, model=name)
    [(_, entry)] = validate_catalog({"models": {name: f}}, path=where_from)
    if callable(builder):
        entry["builder"] = builder
    return _to_spec(name, entry, plugin, origin=where_from)

