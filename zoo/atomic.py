"""Files all at once: written to a scratch copy beside them, then renamed into place; read
only when they are regular files of bounded size.

A reader (or the next run) sees the old file or directory or the finished new one, never
half of one, and a failure (a full disk, Ctrl-C) leaves no scratch behind.
:func:`replace_file` serves :func:`zoo.loading.weights.save_weights` and fine-tuning's
checkpoints, metrics and curves; :func:`write_dir` serves :func:`zoo.loading.build.save` and
:func:`zoo.demos.space.export_space`. :func:`read_regular` reads what zoo is pointed at
(a catalog, a directory's config.json): a FIFO would block forever and ``/dev/zero``
would fill the memory.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

TEMP_SUFFIX = ".tmp"


class NotARegularFile(OSError):
    """A path zoo reads is a FIFO, a device or a directory, or is larger than allowed."""


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes.

    The check is made on the opened file (opened without blocking: a FIFO with no writer
    does not hang the open), so a path swapped for a FIFO after a stat is still refused;
    a file that grows past ``limit`` while read is refused too.

    Raises:
        NotARegularFile: not a regular file, or larger than ``limit`` (an OSError).
        OSError: it cannot be opened or read (FileNotFoundError, PermissionError, ...).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                 | getattr(os, "O_CLOEXEC", 0))
    try:
        problem = unreadable(os.fstat(fd), limit)
        if problem:
            raise NotARegularFile(problem)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise NotARegularFile(f"more than the {limit:,} bytes allowed")
        return data
    finally:
        os.close(fd)


def unreadable(st: os.stat_result, limit: int) -> str | None:
    """Why a file with this stat is not read (not a regular file, too big), else ``None``."""
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else
                "a FIFO" if stat.S_ISFIFO(st.st_mode) else
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "no regular file")
        return f"it is {kind}, not a regular file"
    if st.st_size > limit:
        return f"{st.st_size:,} bytes, more than the {limit:,} allowed"
    return None


def temp_path(path: Path) -> Path:
    """The temp file ``path`` is written to first (same directory: the rename stays on one
    file system and so is atomic), named with our process id so that two processes writing
    one path never share it (``.NAME.PID.tmp``)."""
    return path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")


def replace_file(path: str | os.PathLike[str], produce: Callable[[Path], None]) -> Path:
    """``produce(tmp)`` writes the new content to a temp file beside ``path``; it is then
    synced to disk and renamed over ``path`` (and the rename synced, best effort).

    On any failure (an OSError, Ctrl-C) the temp file is removed, ``path`` keeps its
    previous content and the original error propagates. A crash can leave at most a hidden
    ``.NAME.PID.tmp``.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        produce(tmp)
        # sync through a handle of our own: produce may have written and closed the file
        # itself (fsync flushes the file's data, whichever descriptor asks)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # the original error is the one to report
            tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort: some file systems refuse)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


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
    import uuid

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
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
