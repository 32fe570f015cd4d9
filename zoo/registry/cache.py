"""The on-disk cache of validated catalogs, so a large user catalog costs its parse once.

Keyed by the catalog's path, size and mtime (and zoo's version); a missing, stale or
damaged cache file is simply rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zlib
from pathlib import Path

from zoo.registry.spec import LazySpec, ModelSpec, listing_row

CACHE_VERSION = 5   # 5: records pickled from zoo.registry.spec (was zoo.spec)


def cache_dir() -> Path:
    """Where zoo caches parsed catalogs and plugin discovery (``ZOO_CACHE_DIR`` overrides)."""
    env = os.environ.get("ZOO_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "zoo"


def _cache_file(p: Path, plugin: str | None, family: str | None) -> Path:
    ident = f"{p.resolve()}\0{plugin}\0{family}"
    key = hashlib.sha1(ident.encode()).hexdigest()[:20]
    return cache_dir() / "catalogs" / f"{key}.pickle"


def _cache_head(p: Path, st: os.stat_result, plugin: str | None, family: str | None):
    from zoo.version import __version__  # a new zoo may change ModelSpec's fields

    return (CACHE_VERSION, __version__, str(p.resolve()), st.st_size, st.st_mtime_ns,
            plugin, family)


def read_cached(p: Path, st: os.stat_result, plugin: str | None, family: str | None):
    if os.environ.get("ZOO_NO_CACHE"):
        return None
    try:
        with open(_cache_file(p, plugin, family), "rb") as fh:
            head = pickle.load(fh)
            if not isinstance(head, tuple) or head[:-1] != _cache_head(p, st, plugin, family):
                return None
            body = fh.read()
        # A flipped bit inside a pickled string still unpickles, to wrong data: check it.
        # (crc32 is for damage, at ~2 ms for 10,000 entries; sha1 took 8-17 ms.)
        if zlib.crc32(body) != head[-1]:
            return None
        rows = pickle.loads(body)
        if not isinstance(rows, list):
            return None
        return [LazySpec.from_row(r) for r in rows]
    except Exception:
        return None  # a missing, stale or damaged cache is simply rebuilt


def store(p: Path, st: os.stat_result, plugin: str | None, family: str | None,
           specs: list[ModelSpec]) -> None:
    if os.environ.get("ZOO_NO_CACHE"):
        return
    # Small catalogs parse faster than a cache file can be written and read back.
    if st.st_size < 64_000:
        return
    if any(callable(s.builder) for s in specs):
        return
    target = _cache_file(p, plugin, family)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        # Listing fields stay plain; each full record is pickled on its own, so a listing
        # never unpickles what it does not show (see zoo.registry.spec.LazySpec).
        body = pickle.dumps([listing_row(s) for s in specs], protocol=pickle.HIGHEST_PROTOCOL)
        with open(tmp, "wb") as fh:
            pickle.dump((*_cache_head(p, st, plugin, family), zlib.crc32(body)), fh)
            fh.write(body)
        os.replace(tmp, target)
    except OSError:
        pass  # a read-only home must not break listing
