"""zoo's on-disk cache: parsed catalogs (so a large catalog costs its parse once) and plugin
discovery (:mod:`zoo.registry.discovery`).

The trust model: a catalog and a plugin are code (the user installed or named them); a
cache file is data, and it is read as data only.

- Its format cannot carry code: JSON of plain values (no pickle, no marshal).
- Its content still steers what zoo does (a model's builder and kwargs, which entry points
  to import), so zoo uses a cache only if it is the user's own: the cache directory and
  every file in it must be owned by the current user and writable by no one else (as pip
  refuses a cache directory it does not own). Otherwise it is neither read nor written,
  and one warning line names the directory. zoo creates the directory 0700 and its files
  0600, written to a scratch file and renamed into place.
- A catalog's entry is keyed by the file's path, size, mtime, ctime, inode and device
  (and zoo's version), so an edit is seen even when it keeps the size and puts the mtime
  back: the ctime cannot be put back.

A missing, stale or damaged cache file is simply rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

CACHE_VERSION = 8   # 8: listing columns, records by offset; 6: JSON, no pickle (issue 14)
SUFFIX = ".json"
# Small catalogs parse faster than a cache file can be written and read back.
MIN_CACHED_BYTES = 64_000

_REFUSED: set[str] = set()      # directories already warned about in this process


def cache_dir() -> Path:
    """Where zoo caches parsed catalogs and plugin discovery (``ZOO_CACHE_DIR`` overrides)."""
    env = os.environ.get("ZOO_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "zoo"


def enabled() -> bool:
    """``ZOO_NO_CACHE`` set (to anything but ``0``) turns every cache off."""
    return os.environ.get("ZOO_NO_CACHE", "") in ("", "0")


def _problem(st: os.stat_result) -> str | None:
    """Why a cache directory or file with this stat is not the user's own, or ``None``."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    if uid is not None and st.st_uid != uid:
        return "it is not owned by you"
    if st.st_mode & stat.S_IWOTH:
        return "anyone can write to it"
    # A group of one's own (the usual umask 002 with a group per user) is still private.
    if st.st_mode & stat.S_IWGRP and hasattr(os, "getgid") and st.st_gid != os.getgid():
        return "its group can write to it"
    return None


def _refuse(path: Path, why: str) -> None:
    key = str(path)
    if key not in _REFUSED:
        _REFUSED.add(key)
        print(f"zoo: warning: not using the cache in {path}: {why}; set ZOO_CACHE_DIR to a "
              "directory of your own (or make this one yours alone: chmod go-w)",
              file=sys.stderr)


def private_dir(sub: str, *, create: bool) -> Path | None:
    """``cache_dir()/sub`` if it (and the cache directory) is the user's own, else ``None``.

    With ``create``, missing directories are made, readable by the user only.
    """
    root = cache_dir()
    path = root / sub
    for d in (root, path):
        try:
            st = os.stat(d)
        except FileNotFoundError:
            if not create:
                return None
            try:
                os.makedirs(d, mode=0o700, exist_ok=True)
                st = os.stat(d)
            except OSError:
                return None           # a read-only home must not break listing
        except OSError:
            return None
        why = "it is not a directory" if not stat.S_ISDIR(st.st_mode) else _problem(st)
        if why:
            _refuse(d, why)
            return None
    return path


def read_private(path: Path) -> bytes | None:
    """The bytes of a cache file that is the user's own, else ``None`` (missing, foreign,
    writable by others, not a regular file)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        why = _problem(st)
        if why:
            _refuse(path, why)
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    except OSError:
        return None
    finally:
        os.close(fd)


def write_private(path: Path, write: Callable[[Any], None]) -> None:
    """Write a cache file all at once, readable by the user only; errors are ignored."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# -- parsed catalogs -----------------------------------------------------------------------
#
# One file per (catalog, plugin, family), three parts:
#   line 1   {"head": [...], "crc": CRC32 of the rest, "count": N}
#   line 2   the listing fields of every entry (what `zoo list` reads), column by column
#            (half the parse time of a list per entry), and last the column of offsets of
#            each entry's record in the part below
#   then     N lines, one entry's validated fields each, parsed only when used (found by
#            offset: splitting 10,000 lines cost more than reading them)


class Records:
    """The records part of a catalog cache file: one entry's JSON at each offset."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def at(self, offset: int) -> Any:
        end = self.data.find(b"\n", offset)
        return json.loads(self.data[offset:end if end >= 0 else len(self.data)])


def _cache_file(d: Path, p: Path, plugin: str | None, family: str | None) -> Path:
    ident = f"{p.resolve()}\0{plugin}\0{family}".encode()
    # Two checksums make a 64-bit name; a collision only costs a rebuild (the head holds
    # the whole key). zlib is already loaded; hashlib would add ~3 ms to every command.
    return d / f"{zlib.crc32(ident):08x}{zlib.adler32(ident):08x}{SUFFIX}"


def _head(p: Path, st: os.stat_result, plugin: str | None, family: str | None) -> list[Any]:
    from zoo.version import __version__  # a new zoo may change what the fields mean

    return [CACHE_VERSION, __version__, str(p.resolve()), st.st_size, st.st_mtime_ns,
            st.st_ctime_ns, st.st_ino, st.st_dev, plugin, family]


def read_catalog(p: Path, st: os.stat_result, plugin: str | None,
                 family: str | None) -> tuple[list[tuple[Any, ...]], Records] | None:
    """``(listing rows, records)`` cached for this catalog, or ``None``; each row's last
    value is its record's offset in ``records``."""
    if not enabled():
        return None
    d = private_dir("catalogs", create=False)
    if d is None:
        return None
    data = read_private(_cache_file(d, p, plugin, family))
    if not data:
        return None
    try:
        end = data.index(b"\n")
        meta = json.loads(data[:end])
        if meta["head"] != _head(p, st, plugin, family):
            return None
        # A flipped bit inside a string still parses, to wrong data: check it.
        if zlib.crc32(memoryview(data)[end + 1:]) != meta["crc"]:
            return None
        split = data.index(b"\n", end + 1)
        columns = json.loads(data[end + 1:split])
        rows = list(zip(*columns, strict=True))
        if len(rows) != meta["count"]:
            return None
        return rows, Records(data[split + 1:])
    except (ValueError, KeyError, TypeError):
        return None        # damaged: rebuilt


def store_catalog(p: Path, st: os.stat_result, plugin: str | None, family: str | None,
                  rows: list[list[Any]], records: list[dict[str, Any]]) -> None:
    """Cache a catalog's listing rows and validated records (plain JSON values)."""
    if not enabled() or st.st_size < MIN_CACHED_BYTES:
        return
    encode = json.JSONEncoder(ensure_ascii=False, allow_nan=True, check_circular=False).encode
    try:
        lines = [encode(r).encode() for r in records]
        offsets, at = [], 0
        for line in lines:
            offsets.append(at)
            at += len(line) + 1
        columns = [list(c) for c in zip(*rows, strict=True)] if rows else []
        head = encode([*columns, offsets]).encode()
    except (TypeError, ValueError):
        return             # a TOML date among the kwargs: not JSON, not cached
    if b"\n" in head or any(b"\n" in line for line in lines):
        return             # (JSON escapes newlines; this cannot happen, but the layout needs it)
    d = private_dir("catalogs", create=True)
    if d is None:
        return
    body = b"\n".join([head, *lines])
    meta = json.dumps({"head": _head(p, st, plugin, family), "crc": zlib.crc32(body),
                       "count": len(records)}).encode()

    def write(fh) -> None:
        fh.write(meta + b"\n")
        fh.write(body)

    write_private(_cache_file(d, p, plugin, family), write)
