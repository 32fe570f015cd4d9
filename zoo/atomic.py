"""Write a directory all at once: fill a scratch directory beside it, then rename it into place.

A reader (or the next run) sees the old directory or the finished new one, never half of
one, and a failure (a full disk, Ctrl-C) leaves no scratch behind. Used by
:func:`zoo.build.save` and :func:`zoo.demos.space.export_space`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path


@contextlib.contextmanager
def write_dir(target: str | os.PathLike[str], *, files: Sequence[str] = ()) -> Iterator[Path]:
    """``with write_dir(target) as tmp:`` write into ``tmp``; it becomes ``target`` when the
    block ends normally.

    ``tmp`` is a new empty directory beside ``target`` (same file system, so the rename is
    atomic; ``target``'s parents are created). When the block ends normally, ``tmp`` takes
    ``target``'s name in one rename; a ``target`` that exists must be an empty directory,
    unless ``files`` names what the block writes: then a non-empty ``target`` keeps its other
    entries and just these files are renamed into it, in the given order (a file that names
    another goes after it). When the block raises, ``tmp`` is deleted and ``target`` is
    untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A unique name, so two writers of one target do not share a scratch directory; made
    # with mkdir (not tempfile.mkdtemp, whose 0700 would reach the finished directory) so
    # it gets the umask's permissions, as a directory made in place would.
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    tmp.mkdir()
    try:
        yield tmp
        if files and target.is_dir() and any(target.iterdir()):
            for name in files:
                os.replace(tmp / name, target / name)
        else:
            if target.is_dir():
                target.rmdir()          # must be empty: nothing in it is lost
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
