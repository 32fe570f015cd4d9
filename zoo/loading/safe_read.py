"""Reading files a model folder holds as data: bounded, regular files only, no torch.

A Hub snapshot or a colleague's folder may hold a FIFO (a read would hang), a link to
``/dev/zero`` (a read would never end) or a header that claims terabytes; each is refused
or answered with ``None`` here, before anything is parsed.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from zoo.errors import UsageError

MAX_JSON_BYTES = 16 * 2**20


def read_json(path: Path, what: str, *, limit: int = MAX_JSON_BYTES) -> Any:
    """A regular JSON file of bounded size, or a UsageError naming it.

    Read through :func:`zoo.atomic.read_regular`: the check is made on the opened file,
    so a FIFO (which would hang) or ``/dev/zero`` swapped in after a stat is still refused.
    """
    from zoo.atomic import NotARegularFile, read_regular

    damaged = "the folder is damaged, save or fetch it again"
    try:
        data = read_regular(path, limit)
    except NotARegularFile as e:
        why = str(e).replace("more than the ", f"more than a model's {what} (").replace(
            " allowed", " at most)")
        raise UsageError(f"{path}: unreadable ({why}); {damaged}") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise UsageError(f"{path}: {what} is nested too deeply; {damaged}") from None
    except ValueError as e:
        raise UsageError(f"{path}: {what} is unreadable ({' '.join(str(e).split())[:200]}); "
                         f"{damaged}") from None


def safetensors_params(path: Path | None) -> int | None:
    """Number of values in a safetensors file, read from its header (no torch); ``None``
    for a file that is not one (a pickle's first bytes are no header length to trust),
    and for anything but a regular file (a FIFO would hang the read)."""
    import struct

    if path is None:
        return None
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return None
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > min(st.st_size - 8, MAX_JSON_BYTES):
                return None
            header = json.loads(fh.read(n))
    except (OSError, ValueError, struct.error, RecursionError):
        return None
    if not isinstance(header, dict):
        return None
    total = 0
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        shape = meta.get("shape", []) if isinstance(meta, dict) else None
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            return None
        count = 1
        for d in shape:
            count *= d
        total += count
    return total
