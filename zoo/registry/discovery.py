"""Find entry-point plugins without scanning every installed distribution on every command,
and remember the ones that hung at import.

``importlib.metadata.entry_points()`` costs ~12 ms of imports and ~10 ms of reading
every distribution's metadata (~200 here) on each command, more than all of ``zoo list``
once that is cached. What it finds changes only when a distribution is installed, removed
or upgraded, and pip (like every installer) then creates or removes a ``.dist-info``
folder, which changes the modification time of the ``sys.path`` folder holding it.

So :func:`entry_points` keeps, per ``sys.path`` entry, that folder's (mtime, inode,
device, link count) and what it held: every distribution's name (an earlier one shadows a
later one of the same name, as in importlib) and the ``zoo`` entry points of each, with
the stat of their ``entry_points.txt`` (an editable install rewritten in place). On the
next command a few ``stat`` calls check it; an entry that changed (or changed within 2 s
of its scan: file times tick coarsely) is scanned again, the others are not. A plain
folder is read as importlib reads one, without importing it; zip files, ``.egg`` folders
and third-party distribution finders go through :mod:`importlib.metadata`. Not seen: a
distribution *without* zoo entry points gaining some by an edit of its metadata in place
(no installer does that); ``ZOO_NO_CACHE=1`` scans everything.

A plugin that timed out importing is remembered with its distribution's name and version
and the stat of its files (metadata folder, and the module or package its entry point
names): later commands skip it at once, with one warning line, until one of those
changes or ``ZOO_PLUGIN_IMPORT_TIMEOUT`` is raised above the time it was given.

The cache is one JSON file under :func:`zoo.registry.cache.cache_dir`, read only when
it is the user's own (see :mod:`zoo.registry.cache` for the trust model).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from functools import reduce
from importlib import import_module
from typing import Any

from zoo.registry import cache

FORMAT = 2
FILE = "discovery.json"
MAX_PATHS = 256              # sys.path entries remembered (venvs, working directories)
MAX_PACKAGE_FILES = 5000     # files stat-ed to fingerprint a hung plugin's package
RACY_NS = 2 * 10**9          # see _fresh
# importlib.metadata.EntryPoint.pattern; compiled (and cached) by re on first use
_VALUE = r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"


def normalize(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): ``Zoo_VAE`` -> ``zoo-vae``."""
    return re.sub(r"[-_.]+", "-", name).lower()


class EntryPoint:
    """One ``zoo`` entry point: what importlib's EntryPoint gives, plus where it lives."""

    __slots__ = ("dist", "group", "meta", "name", "value", "version")

    def __init__(self, name: str, value: str, group: str, dist: str | None,
                 version: str | None, meta: str | None):
        self.name, self.value, self.group = name, value, group
        self.dist, self.version, self.meta = dist, version, meta

    def load(self) -> Any:
        """Import the module and return the object the value names (as importlib does)."""
        match = re.match(_VALUE, self.value)
        if match is None:
            raise ValueError(f"entry point value {self.value!r} is not 'module' or "
                             "'module:attribute'")
        module = import_module(match.group("module"))
        return reduce(getattr, filter(None, (match.group("attr") or "").split(".")), module)

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, dist={self.dist!r})"


# -- the cache file ------------------------------------------------------------------------

def _read() -> dict[str, Any]:
    d = cache.private_dir("plugins", create=False) if cache.enabled() else None
    data = cache.read_private(d / FILE) if d is not None else None
    if data:
        try:
            doc = json.loads(data)
            if isinstance(doc, dict) and doc.get("format") == FORMAT:
                return doc
        except ValueError:
            pass
    return {"format": FORMAT, "paths": {}, "hangs": {}}


def _write(doc: dict[str, Any]) -> None:
    if not cache.enabled():
        return
    d = cache.private_dir("plugins", create=True)
    if d is not None:
        data = json.dumps(doc, separators=(",", ":")).encode()
        cache.write_private(d / FILE, lambda fh: fh.write(data))


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    # nlink counts a folder's subfolders on most file systems: a .dist-info more or less.
    return [st.st_mtime_ns, st.st_ino, st.st_dev, st.st_nlink]


def _file_stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_mtime_ns, st.st_size]


# -- discovery -----------------------------------------------------------------------------

def _scan(entry: str, group: str) -> list[list[Any]]:
    """``[[normalized name, name, version, metadata dir, eps stamp, [[ep, value], ...]]]``
    of the distributions in one ``sys.path`` entry, in importlib's order."""
    if os.path.isdir(entry) and not entry.lower().endswith(".egg") and not _other_finders():
        return _scan_folder(entry, group)
    return _scan_importlib(entry, group)


def _other_finders() -> bool:
    """Whether a meta-path finder other than the standard one finds distributions."""
    from importlib.machinery import PathFinder

    return any(hasattr(f, "find_distributions") and f is not PathFinder
               for f in sys.meta_path)


def _scan_folder(entry: str, group: str) -> list[list[Any]]:
    """:func:`_scan` for a plain folder, as importlib reads one (its ``Lookup`` and
    ``Sectioned``), without importing importlib.metadata (~12 ms): a folder that changes
    often (the working directory of ``python -m zoo``) is scanned on each command."""
    try:
        children = os.listdir(entry)
    except OSError:
        return []
    by_name: dict[str, list[str]] = {}
    for child in children:
        low = child.lower()
        if low.endswith((".dist-info", ".egg-info")):
            by_name.setdefault(normalize(low.rpartition(".")[0].partition("-")[0]),
                               []).append(child)
    out = []
    for norm, metas in by_name.items():
        for child in metas:
            meta = os.path.join(entry, child)
            eps = _entry_points_in(meta, group)
            name = version = stamp = None
            if eps:
                name, version = _name_version(meta)
                stamp = _file_stamp(os.path.join(meta, "entry_points.txt"))
            out.append([norm, name, version, meta if eps else None, stamp, eps])
    return out


def _entry_points_in(meta: str, group: str) -> list[list[str]]:
    try:
        with open(os.path.join(meta, "entry_points.txt"), encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):      # none (or an egg-info that is a file)
        return []
    section, out = None, []
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
        elif section == group and "=" in line:
            name, value = map(str.strip, line.split("=", 1))
            out.append([name, value])
    return out


def _name_version(meta: str) -> tuple[str | None, str | None]:
    """Name and Version from a distribution's METADATA (PKG-INFO for an egg-info)."""
    found: dict[str, str] = {}
    for file in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(meta, file), encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if not line.strip():
                        break           # the headers end at the first blank line
                    key, colon, value = line.partition(":")
                    if colon and key in ("Name", "Version"):
                        found.setdefault(key, value.strip())
            break
        except OSError:
            continue
    return found.get("Name"), found.get("Version")


def _scan_importlib(entry: str, group: str) -> list[list[Any]]:
    from importlib.metadata import distributions

    out = []
    for dist in distributions(path=[entry]):
        try:
            norm = dist._normalized_name          # from the folder name: no file read
            eps = [[ep.name, ep.value] for ep in dist.entry_points if ep.group == group]
            name = version = meta = stamp = None
            if eps:
                name, version = dist.metadata["Name"], dist.version
                path = getattr(dist, "_path", None)
                meta = str(path) if path is not None else None
                stamp = _file_stamp(os.path.join(meta, "entry_points.txt")) if meta else None
        except Exception:  # a distribution with broken metadata: importlib would skip it too
            continue
        out.append([normalize(norm or name or ""), name, version, meta, stamp, eps])
    return out


def _fresh(record: Any, stamp: list[int] | None) -> bool:
    if not isinstance(record, dict) or record.get("stamp") != stamp:
        return False
    # File times tick coarsely (a few ms; 2 s on FAT): a folder changed shortly before it
    # was scanned may change again within the same tick, unseen. Such a record is only
    # trusted once it is older than that (git's "racy" index entries, the same way).
    if stamp is not None and stamp[0] >= record.get("scanned", 0) - RACY_NS:
        return False
    dists = record.get("dists")
    if not isinstance(dists, list):
        return False
    for d in dists:
        if not (isinstance(d, list) and len(d) == 6):
            return False
        if d[5] and (d[3] is None or _file_stamp(os.path.join(d[3], "entry_points.txt"))
                     != d[4]):
            return False
    return True


def entry_points(group: str = "zoo") -> list[EntryPoint]:
    """The entry points of ``group`` of every distribution on ``sys.path``, the first of
    each distribution name only (as ``importlib.metadata.entry_points`` gives them)."""
    use_cache = cache.enabled()
    doc = _read() if use_cache else {"paths": {}}
    paths = doc["paths"]
    dirty = False
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for raw in sys.path:
        if not isinstance(raw, str):
            continue
        entry = os.path.abspath(raw or ".")
        stamp = _stamp(entry)
        record = paths.get(entry)
        if not _fresh(record, stamp):
            record = {"stamp": stamp, "scanned": time.time_ns(),
                      "dists": _scan(entry, group) if stamp else []}
            dirty = True
        paths.pop(entry, None)
        paths[entry] = record       # most recently used last
        for norm, name, version, meta, _, eps in record["dists"]:
            if norm in seen:
                continue
            seen.add(norm)
            for ep_name, value in eps:
                found.append(EntryPoint(ep_name, value, group, name, version, meta))
    if use_cache and dirty:
        for old in list(paths)[:max(0, len(paths) - MAX_PATHS)]:
            del paths[old]
        _write(doc)
    return found


# -- plugins that hung at import -----------------------------------------------------------

def hang_key(ep: Any) -> str | None:
    """How a hang of ``ep`` is remembered (``None``: not remembered, it was not found by
    :func:`entry_points`, e.g. a test's stand-in)."""
    meta = getattr(ep, "meta", None)
    if meta is None:
        return None
    return json.dumps([ep.name, ep.value, ep.dist, ep.version, meta])


def hangs() -> dict[str, Any]:
    """The remembered hangs (read once per loading, handed to :func:`earlier_hang`)."""
    if not cache.enabled():
        return {}
    found = _read().get("hangs")
    return found if isinstance(found, dict) else {}


def _files(ep: EntryPoint) -> list[Any]:
    """A fingerprint of a plugin's files, taken without importing it: its metadata folder,
    and the newest mtime, count and total size of the files of its top-level module."""
    out: list[Any] = [_stamp(ep.meta) if ep.meta else None]
    top = ep.value.split(":")[0].strip().split(".")[0]
    try:
        from importlib.util import find_spec

        spec = find_spec(top)       # a top-level name: finds it, runs none of it
    except Exception:
        spec = None
    places = list(spec.submodule_search_locations or []) if spec else []
    if spec and spec.origin and not places:
        places = [spec.origin]
    newest = count = size = 0
    for place in places:
        for root, _dirs, names in os.walk(place) if os.path.isdir(place) else \
                [(os.path.dirname(place), [], [os.path.basename(place)])]:
            for n in names:
                if count >= MAX_PACKAGE_FILES:
                    break
                st = _file_stamp(os.path.join(root, n))
                if st:
                    newest, count, size = max(newest, st[0]), count + 1, size + st[1]
    return [*out, newest, count, size]


def earlier_hang(ep: Any, timeout: float, known: dict[str, Any]) -> float | None:
    """The time limit ``ep`` exceeded in an earlier command (``known``: :func:`hangs`), if
    it and its files are unchanged since and ``timeout`` is not longer; else ``None``."""
    key = hang_key(ep)
    record = known.get(key) if key is not None else None
    if not isinstance(record, dict) or not isinstance(record.get("timeout"), int | float):
        return None
    if timeout <= 0 or timeout > record["timeout"] or record.get("files") != _files(ep):
        return None
    return float(record["timeout"])


def remember_hang(ep: Any, timeout: float | None) -> None:
    """Record that ``ep`` did not finish importing within ``timeout`` (``None``: it did
    finish, forget any earlier record)."""
    key = hang_key(ep)
    if key is None or not cache.enabled():
        return
    doc = _read()
    hangs = doc.setdefault("hangs", {})
    if timeout is None:
        if key not in hangs:
            return
        del hangs[key]
    else:
        hangs[key] = {"timeout": timeout, "files": _files(ep)}
    _write(doc)
