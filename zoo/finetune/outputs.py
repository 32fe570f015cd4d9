"""What a fine-tuning run writes, and writing it safely.

* :func:`estimate_outputs` sizes a run's files from the built model (parameter count and
  dtypes, the optimiser's extra copies, LoRA's smaller adapter) so that
  :func:`check_disk_space` can refuse a run that would fill the disk *before* training.
* :func:`atomic_write` writes every checkpoint, metrics file and curve to a temp file in
  the same directory, syncs it and renames it into place: a full disk, a file-size limit,
  Ctrl-C or a kill leaves the previous file intact and no half-written file behind.
* :class:`OutputWriteError` is what a failed write becomes: one line naming the file, the
  reason and how to continue (``--resume`` from the last good checkpoint).

Nothing here imports torch at module level.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zoo.atomic import TEMP_SUFFIX, replace_file
from zoo.errors import UsageError, ZooError

# Free space kept in reserve on top of the estimate: other writers share the disk, and a
# file system that is 100% full misbehaves in ways a training run should not discover.
MARGIN_BYTES = 16 * 2**20
MARGIN_FRACTION = 0.05

# torch.save (a zip file): per stored tensor a local header, a 64-byte-aligned record, a
# central-directory entry and the pickle's rebuild call (measured ~250 B; rounded up).
_ZIP_PER_TENSOR = 400
_ZIP_FIXED = 4096
# Pickled history: one dict of ~8 numbers per epoch, plus the config and fingerprint.
_PER_EPOCH = 512
# metrics.json + config.json grow with epochs and labels; curve.png (9 x 3.5 in at 110 dpi)
# measured 18-55 kB.
_METADATA_FIXED = 96 * 1024
_PER_LABEL = 64
# peft's adapter_config.json and README.md
_ADAPTER_FIXED = 16 * 1024
# safetensors header: one JSON entry (name, dtype, shape, offsets) per tensor.
_SAFETENSORS_PER_TENSOR = 96

class OutputWriteError(ZooError):
    """A file of the run could not be written (disk full, file too large, read-only);
    the last good checkpoint is kept and ``--resume`` continues from it (exit code 1)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says what was saved and how to continue.

    A ``KeyboardInterrupt`` still, so callers that stop on Ctrl-C keep doing so.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "interrupted"


# -- sizes -----------------------------------------------------------------------------------------

def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'`` (binary units, as ``df -h`` counts)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _unique_bytes(tensors: Iterable[Any]) -> tuple[int, int]:
    """(bytes, count) of the storages behind ``tensors``, each counted once (torch.save and
    safetensors store a shared storage, e.g. tied weights, once)."""
    seen: set[tuple[str, int]] = set()
    total = count = 0
    for t in tensors:
        if t is None or not hasattr(t, "untyped_storage"):
            continue
        storage = t.untyped_storage()
        key = (str(t.device), storage.data_ptr())
        if key in seen and storage.data_ptr():
            continue
        seen.add(key)
        # torch.save writes the whole storage; a view's numel would undercount.
        total += max(storage.nbytes(), t.numel() * t.element_size())
        count += 1
    return total, count


@dataclass(frozen=True)
class OutputEstimate:
    """Bytes a run writes, by file (an upper estimate, see :func:`estimate_outputs`)."""

    checkpoint: int          # checkpoints/last.pt
    weights: int             # model.safetensors
    adapter: int = 0         # adapter/ (LoRA)
    metadata: int = 0        # config.json, metrics.json, curve.png

    @property
    def final(self) -> int:
        """What stays on disk when the run ends."""
        return self.checkpoint + self.weights + self.adapter + self.metadata

    @property
    def peak(self) -> int:
        """Most the run occupies at once: while a checkpoint is replaced the old and the
        new one both exist; at the end the checkpoint stays next to the model's files."""
        return max(2 * self.checkpoint, self.final)

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "final": self.final, "peak": self.peak}


def _optimizer_copies(optimizer: str) -> int:
    """Tensors of optimiser state per trainable parameter (Adam's two moments; SGD's
    momentum buffer)."""
    return {"adamw": 2, "adam": 2, "sgd": 1}.get(optimizer.lower(), 2)


def _is_adapter_name(name: str) -> bool:
    return "lora_" in name or ".modules_to_save." in name


def estimate_outputs(model, *, train_model=None, optimizer: str = "adamw",
                     early_stopping: bool = False, epochs: int = 1, labels: int = 0,
                     lora: bool = False) -> OutputEstimate:
    """Estimate what a run writes, from the built model's tensors (counts and dtypes).

    Args:
        model: the network whose weights are saved at the end (for LoRA the peft-wrapped
            one: its adapters fold into the base weights, so they are not counted twice).
        train_model: what the loop trains and checkpoints (the head alone when features
            are cached; the peft model for LoRA); defaults to ``model``.
        optimizer: adamw/adam keep two extra copies of each trainable parameter, sgd one.
        early_stopping: the checkpoint then also holds the best epoch's weights.
        epochs, labels: the history and label list grow metrics.json and config.json.
        lora: the run also writes ``adapter/`` (the trainable tensors alone).
    """
    train_model = model if train_model is None else train_model
    state = train_model.state_dict()
    state_bytes, state_count = _unique_bytes(state.values())
    trainable = [p for p in train_model.parameters() if p.requires_grad]
    trained_bytes, trained_count = _unique_bytes(trainable)
    copies = _optimizer_copies(optimizer)
    # Adam's per-parameter step counter is a float32 scalar tensor of its own.
    steps = trained_count if copies == 2 else 0
    ckpt_tensors = state_count + copies * trained_count + steps + 1  # + the RNG state
    checkpoint = (state_bytes * (2 if early_stopping else 1) + copies * trained_bytes
                  + 4 * steps + 5056 + _ZIP_FIXED
                  + ckpt_tensors * _ZIP_PER_TENSOR
                  + (state_count * _ZIP_PER_TENSOR if early_stopping else 0)
                  + sum(len(k) for k in state) * (3 if early_stopping else 2)
                  + epochs * _PER_EPOCH)
    own = model.state_dict()
    kept = [v for k, v in own.items() if not (lora and _is_adapter_name(k))]
    w_bytes, w_count = _unique_bytes(kept)
    weights = w_bytes + w_count * _SAFETENSORS_PER_TENSOR + sum(len(k) for k in own) + 1024
    adapter = 0
    if lora:
        a_bytes, a_count = _unique_bytes(v for k, v in own.items() if _is_adapter_name(k))
        adapter = a_bytes + a_count * 2 * _SAFETENSORS_PER_TENSOR + _ADAPTER_FIXED
    metadata = _METADATA_FIXED + epochs * _PER_EPOCH * 2 + labels * _PER_LABEL
    return OutputEstimate(int(checkpoint), int(weights), int(adapter), int(metadata))


def weights_lower_bound(model, *, skip: Iterable[str] = ()) -> int:
    """Bytes the final weights take at least, whatever the data: every tensor but those
    under ``skip`` (the head, which the class count resizes) and embeddings (a vocabulary
    learned from the data resizes them)."""
    from torch import nn

    skip = tuple(s for s in skip if s)
    dropped = {n for n, m in model.named_modules() if isinstance(m, nn.Embedding)}
    prefixes = tuple(f"{s}." for s in (*skip, *dropped))
    tensors = [v for k, v in model.state_dict().items() if not k.startswith(prefixes)]
    return _unique_bytes(tensors)[0]


# -- free space ------------------------------------------------------------------------------------

def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (where new files would land)."""
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(path.anchor or ".")


def disk_free(path: Path) -> int:
    """Bytes free for this user on the file system holding ``path``."""
    return shutil.disk_usage(nearest_existing(Path(path))).free


def margin_for(needed: int) -> int:
    return int(MARGIN_BYTES + MARGIN_FRACTION * needed)


def check_disk_space(out: Path, needed: int, *, what: str, hint: str = "",
                     free: int | None = None) -> None:
    """Refuse (UsageError, one line) when ``needed`` bytes plus a margin do not fit on the
    file system of ``out``; ``what`` says what the bytes are for."""
    out = Path(out)
    where = nearest_existing(out)
    if free is None:
        try:
            free = disk_free(out)
        except OSError:
            return        # no statvfs here (some network file systems): nothing to check
    margin = margin_for(needed)
    if needed + margin <= free:
        return
    raise UsageError(
        f"{out}: not enough disk space: {what} need about {human_bytes(needed)} (plus a "
        f"{human_bytes(margin)} reserve) but {where} has {human_bytes(free)} free; free "
        f"{human_bytes(needed + margin - free)} there or choose another --out{hint}")


# -- safe writes -----------------------------------------------------------------------------------

class _Sink:
    """A file wrapper that remembers the first exception a write raised: torch.save turns
    a failed write into ``RuntimeError('... unexpected pos ...')``, which says nothing about
    the full disk behind it."""

    def __init__(self, raw, path: Path):
        self.raw, self.path, self.error = raw, path, None

    def write(self, data) -> int:
        try:
            return self.raw.write(data)
        except BaseException as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.raw.flush()

    def fileno(self) -> int:
        return self.raw.fileno()

    def tell(self) -> int:
        return self.raw.tell()

    def seek(self, *args) -> int:
        return self.raw.seek(*args)

    def seekable(self) -> bool:
        return self.raw.seekable()

    def writable(self) -> bool:
        return True


def atomic_write(path: str | os.PathLike[str], write: Callable[[Any], None]) -> Path:
    """Call ``write(file)`` on a temp file next to ``path``, sync it, then rename it over
    ``path`` (:func:`zoo.atomic.replace_file`; ``path``'s directory is created). On any
    failure (OSError, Ctrl-C) the temp file is removed and ``path`` keeps its previous
    content; a failed write raises the OSError itself."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def produce(tmp: Path) -> None:
        with open(tmp, "wb") as raw:
            sink = _Sink(raw, path)
            try:
                write(sink)
                raw.flush()
            except Exception:
                if sink.error is not None:
                    raise sink.error from None
                raise

    return replace_file(path, produce)


def remove_stale_temps(directories: Iterable[Path]) -> list[Path]:
    """Delete temp files a killed run left in ``directories`` (those of live processes
    stay); returns what was removed."""
    removed = []
    pattern = re.compile(r"^\..+\.(\d+)" + re.escape(TEMP_SUFFIX) + "$")
    for d in directories:
        if not d.is_dir():
            continue
        for f in d.iterdir():
            m = pattern.match(f.name)
            if not m or not f.is_file() or _alive(int(m.group(1))):
                continue
            with contextlib.suppress(OSError):
                f.unlink()
                removed.append(f)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False          # ours from an earlier call in this process: not in use now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def as_write_error(exc: BaseException) -> OSError | None:
    """The OSError behind a failed write: itself, or the one that safetensors (a Rust
    library) reports as ``SafetensorError('... I/O error: ... (os error 28)')``."""
    if isinstance(exc, OSError):
        return exc
    if type(exc).__name__ == "SafetensorError":
        m = re.search(r"\(os error (\d+)\)", str(exc))
        if m:
            code = int(m.group(1))
            return OSError(code, os.strerror(code))
    return None


def reason(exc: OSError) -> str:
    """``'No space left on device'``, ``'File too large'``... from an OSError."""
    return exc.strerror or str(exc) or type(exc).__name__


def remedy(exc: OSError) -> str:
    """What the user does about ``exc`` before resuming."""
    if exc.errno == errno.EFBIG:
        return "Raise the file-size limit (ulimit -f)"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "Make the directory writable"
    return "Free disk space"


@contextlib.contextmanager
def writing(path: Path, *, kept: str) -> Iterator[None]:
    """Turn a failed write of ``path`` into one :class:`OutputWriteError` line that says
    what is kept (``kept``) and how to continue."""
    try:
        yield
    except Exception as e:
        err = as_write_error(e)
        if err is None:
            raise
        raise OutputWriteError(
            f"{path}: could not write ({reason(err)}); {kept}. {remedy(err)}, then rerun "
            "the same command with --resume") from None
