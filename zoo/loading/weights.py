"""Read weight files safely and put them into a model, all or nothing.

Safe by default: ``.safetensors`` is read with safetensors; anything else goes through
``torch.load(weights_only=True)``, which refuses pickles that would run code (the code is
never run). A sha256, when known, is checked before a byte is parsed. A file must hold a
flat mapping of names to tensors (``{"state_dict": ...}``-style wrappers are unwrapped).
Keys and shapes are compared with the model before anything is copied, so a bad file
leaves the model untouched. Every failure is a one-line :class:`zoo.errors.WeightsError`
naming the file and what differs.

Downloaded weights are cached under :func:`weights_cache_dir` (``$ZOO_HOME/weights``, else
``~/.cache/zoo/weights``); see :mod:`zoo.loading.sources` for where each URI scheme keeps its files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zoo.errors import WeightsError

CACHE_ENV = "ZOO_HOME"


def weights_cache_dir() -> Path:
    """Where downloaded weights are cached (``ZOO_HOME`` overrides ``~/.cache/zoo``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser() / "weights"
    from zoo.registry.cache import cache_dir

    return cache_dir() / "weights"


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    import hashlib  # not for listing: ~3 ms to import

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: Path, expected: str | None) -> None:
    """Raise WeightsError if ``path`` does not hash to ``expected`` (skipped when None)."""
    if not expected:
        return
    if not isinstance(expected, str):  # a damaged config.json can hold any JSON value
        raise WeightsError(f"{path}: the expected sha256 is a {type(expected).__name__}, not a "
                           "hex string; fix the sha256 in the catalog or config.json")
    got = sha256_of(path)
    if got != expected.strip().lower():
        raise WeightsError(f"{path}: sha256 is {got[:16]}..., expected {expected[:16]}...; "
                           "the file is corrupt or was replaced. Delete it and fetch it again")


def read_state_dict(path: str | os.PathLike[str], *, sha256: str | None = None) -> dict[str, Any]:
    """Load a state dict from a file without running any code it may contain.

    Args:
        path: a ``.safetensors`` file, or a torch checkpoint (``.pt``/``.pth``/``.bin``).
        sha256: expected hex digest; checked before the file is parsed.

    Raises:
        WeightsError: missing, wrong hash, truncated or corrupt, a pickle that would run
            code, or not a mapping of names to tensors (one line naming the file).
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: no such weights file")
    verify_sha256(p, sha256)
    if p.stat().st_size == 0:
        raise WeightsError(f"{p}: is empty; the download or copy did not finish. Delete it "
                           "and fetch it again")
    if p.suffix == ".safetensors" or _looks_like_safetensors(p):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(p))
        except (SafetensorError, OSError, ValueError) as e:
            raise WeightsError(f"{p}: not a readable safetensors file ({_first_line(e)}); "
                               f"it is truncated or corrupt. {_REFETCH}") from None
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # the refusal below says all there is to say
            warnings.simplefilter("ignore")
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = _unpickle_reason(e)
        if "GLOBAL" in reason:
            # the pickle names a function or class to call: what a code payload looks like
            raise WeightsError(f"{p}: refused to unpickle ({reason}); only plain tensors are "
                               "loaded, no code is run. Convert the file to safetensors if "
                               "you trust it, else delete it") from None
        # an opcode or structure torch's safe unpickler does not take: a damaged file, or a
        # pickle written by plain pickle.dump (STACK_GLOBAL, opcode 149): either way not run
        raise WeightsError(f"{p}: refused to unpickle ({reason}); it is damaged or not a plain "
                           "torch.save of tensors. Only plain tensors are loaded, no code is "
                           "run. Fetch it again, or convert it to safetensors if you trust it"
                           ) from None
    except Exception as e:  # a damaged file can make the unpickler raise almost anything
        raise WeightsError(f"{p}: not a readable checkpoint ({_first_line(e)}); it is "
                           f"truncated or corrupt. {_REFETCH}") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise WeightsError(f"{p}: holds a {type(obj).__name__}, not a state dict of tensors; "
                           "save model.state_dict() instead")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        what = "entry that is not a tensor" if len(bad) == 1 else "entries that are not tensors"
        raise WeightsError(f"{p}: holds {len(bad)} {what} ({_few(bad)}: "
                           f"{type(obj[bad[0]]).__name__}); not a state dict. Save "
                           "model.state_dict() instead")
    return obj


def apply_state_dict(model: Any, state: dict[str, Any], *, origin: str) -> Any:
    """Copy ``state`` into ``model`` after checking every key, shape and dtype; return ``model``.

    A tensor may be cast within its kind (float16 into float32, int32 into int64), never
    across kinds (integers or complex numbers into float parameters, floats into integer
    buffers): such a file holds other data than the model expects.

    Raises:
        WeightsError: naming ``origin`` and the keys, shapes or dtypes that differ; the
        model is left as it was.
    """
    own = model.state_dict()
    # sparse, nested, quantized or meta tensors: load_state_dict would fail half-way
    # through (some parameters already overwritten), and a nested tensor's .shape raises
    unusual = [(k, why) for k, v in state.items()
               if (why := _unusual(v, own.get(k))) is not None]
    if unusual:
        k, why = unusual[0]
        what = ("entry is not a plain dense tensor" if len(unusual) == 1
                else "entries are not plain dense tensors")
        raise WeightsError(f"{origin}: {len(unusual)} {what} ({_few([k])}: {why}); save "
                           "plain tensors (the state_dict() of an ordinary float model)")
    odd = [k for k, v in state.items() if not hasattr(v, "shape")]
    if odd:
        raise WeightsError(f"{origin}: {_few(odd)} {'is' if len(odd) == 1 else 'are'} not "
                           "tensor(s); not a state dict. Save model.state_dict() instead")
    state = _fill_tied(own, state)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in own.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) ({_few(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) ({_few(unexpected)})")
        if wrong:
            shown = "; ".join(f"{_few([k])}: file {list(got)}, model {list(want)}"
                              for k, got, want in wrong[:3])
            more = "; ..." if len(wrong) > 3 else ""
            parts.append(f"{len(wrong)} shape mismatch(es) ({shown}{more})")
        raise WeightsError(f"{origin}: does not fit the model: " + "; ".join(parts)
                           + ". Check the model name and its kwargs")
    import torch

    kinds = [(k, state[k].dtype, v.dtype) for k, v in own.items()
             if isinstance(v, torch.Tensor) and isinstance(state[k], torch.Tensor)
             and _kind(state[k].dtype) != _kind(v.dtype)]
    if kinds:
        shown = "; ".join(f"{_few([k])}: file {_dtype_name(got)} {list(state[k].shape)}, "
                          f"model {_dtype_name(want)} {list(own[k].shape)}"
                          for k, got, want in kinds[:3])
        more = "; ..." if len(kinds) > 3 else ""
        raise WeightsError(f"{origin}: does not fit the model: {len(kinds)} dtype mismatch(es) "
                           f"({shown}{more}); the file holds other data than these weights. "
                           "Check the file and the model name")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # keys, shapes and dtypes fit: nothing known is left to fail
        raise WeightsError(f"{origin}: could not copy into the model ({_copy_reason(e)})"
                           ) from None
    return model


def load_weights(model: Any, path: str | os.PathLike[str], *, sha256: str | None = None,
                 origin: str | None = None) -> Any:
    """Read ``path`` safely, check it against ``model`` and copy it in; return ``model``.

    ``origin`` names the weights in errors (a URI, say); the file path is used if omitted.
    """
    state = read_state_dict(path, sha256=sha256)
    return apply_state_dict(model, state, origin=origin or str(path))


def save_weights(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write the model's weights as safetensors, atomically (tied tensors are stored once).

    The file is written next to ``path`` under a temporary name, synced to disk and renamed
    over ``path``: a full disk, Ctrl-C or an error leaves the previous file as it was and
    no temporary file behind. A crash can leave at most a hidden ``.NAME.PID.tmp``.
    """
    from safetensors.torch import save_model

    from zoo.atomic import replace_file

    def produce(tmp: Path) -> None:
        save_model(model, str(tmp))
        os.chmod(tmp, 0o644)  # safetensors writes 0600; shipped and shared weights must be readable

    return replace_file(path, produce)


def _fill_tied(own: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """Fill in what a file may rightly lack: tied parameters (stored once by
    :func:`save_weights`) get their twin's tensor, old BatchNorm files their counter."""
    missing = [k for k in own if k not in state]
    if not missing:
        return state
    by_storage: dict[tuple, list[str]] = {}
    for k, v in own.items():
        if hasattr(v, "untyped_storage") and v.numel():
            key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
            by_storage.setdefault(key, []).append(k)
    filled = dict(state)
    for names in by_storage.values():
        present = [n for n in names if n in state]
        for n in names:
            if n not in filled and present:
                filled[n] = state[present[0]]
    for k in missing:
        # checkpoints older than torch 0.4.1 lack BatchNorm's counter; start it at 0 as
        # torch itself would, so that the strict load below cannot fail half-way
        if k.endswith(".num_batches_tracked") and k not in filled:
            filled[k] = own[k].new_zeros(own[k].shape)
    return filled


def _few(keys: list[str], n: int = 3) -> str:
    """The first ``n`` keys, printable: a key from a damaged header may hold a newline."""
    shown = [k if k.isprintable() and k else repr(k) for k in keys[:n]]
    return ", ".join(shown) + (", ..." if len(keys) > n else "")


def _kind(dtype: Any) -> str:
    """``"float"``, ``"complex"`` or ``"int"`` (bool and unsigned included)."""
    if dtype.is_complex:
        return "complex"
    return "float" if dtype.is_floating_point else "int"


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _unusual(v: Any, own: Any) -> str | None:
    """Why tensor ``v`` cannot be copied into ``own`` like a plain one, or ``None``."""
    import torch

    if not isinstance(v, torch.Tensor):
        return None  # array-likes from a caller's own dict: load_state_dict judges them
    if v.is_nested:
        return "a nested tensor"
    if v.layout != torch.strided:
        return f"layout {str(v.layout).removeprefix('torch.')}"
    if v.is_meta:
        return "a meta tensor without data"
    if v.is_quantized and not (isinstance(own, torch.Tensor) and own.is_quantized):
        return f"quantized ({_dtype_name(v.dtype)})"
    return None


def _copy_reason(e: BaseException) -> str:
    """torch's "Error(s) in loading state_dict" paragraph -> the line naming the parameter."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("While copying the parameter named"):
            return ln[:300]
    return " ".join(lines)[:300] or type(e).__name__


def _looks_like_safetensors(p: Path) -> bool:
    """A safetensors file starts with an 8-byte header length, then its JSON header."""
    with open(p, "rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _unpickle_reason(e: BaseException) -> str:
    """The news in torch's paragraph: the line naming a refused ``GLOBAL`` (a function or
    class the pickle wanted to call: what a code payload needs), else what follows
    "WeightsUnpickler error:" (a bad opcode or structure: a damaged file)."""
    text = str(e)
    for line in text.splitlines():
        if "GLOBAL" in line:
            line = line.split("WeightsUnpickler error:")[-1].split(" was not an allowed")[0]
            return " ".join(line.split())[:200]
    _, marker, rest = text.partition("WeightsUnpickler error:")
    if marker:
        for line in rest.splitlines():
            if line.strip():
                return " ".join(line.split())[:200]
    return _first_line(e)


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0][:200] if s else type(e).__name__


# what every "this file is damaged" message tells the user to do
_REFETCH = "Delete it and fetch or copy it again"
