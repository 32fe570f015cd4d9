"""Read weight files safely and put them into a model, all or nothing.

Safe by default: ``.safetensors`` is read with safetensors; anything else goes through
``torch.load(weights_only=True)``, which refuses pickles that would run code. A sha256,
when known, is checked before a byte is parsed. Keys and shapes are compared with the
model before anything is copied, so a bad file leaves the model untouched.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from .errors import WeightsError

CACHE_ENV = "ZOO_HOME"


def weights_cache_dir() -> Path:
    """Where downloaded weights are cached (``ZOO_HOME`` overrides ``~/.cache/zoo``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser() / "weights"
    from .catalog import cache_dir

    return cache_dir() / "weights"


def sha256_of(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: Path, expected: str | None) -> None:
    """Raise WeightsError if ``path`` does not hash to ``expected`` (skipped when None)."""
    if not expected:
        return
    got = sha256_of(path)
    if got != expected.lower():
        raise WeightsError(f"{path}: sha256 is {got[:16]}..., expected {expected[:16]}...; "
                           "the file is corrupt or was replaced. Delete it and fetch it again")


def read_state_dict(path: str | os.PathLike[str], *, sha256: str | None = None) -> dict[str, Any]:
    """Load a state dict from a file without running any code it may contain."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: no such weights file")
    verify_sha256(p, sha256)
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(p))
        except (SafetensorError, OSError, ValueError) as e:
            raise WeightsError(f"{p}: not a readable safetensors file ({_first_line(e)}); "
                               "it is truncated or corrupt") from None
    import pickle
    import zipfile

    import torch

    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise WeightsError(f"{p}: refused to unpickle ({_first_line(e)}); only plain tensors "
                           "are loaded. Convert the file to safetensors") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise WeightsError(f"{p}: not a readable checkpoint ({_first_line(e)}); it is "
                           "truncated or corrupt") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise WeightsError(f"{p}: holds a {type(obj).__name__}, not a state dict of tensors")
    return obj


def apply_state_dict(model: Any, state: dict[str, Any], *, origin: str) -> Any:
    """Copy ``state`` into ``model`` after checking every key and shape; return ``model``.

    Raises:
        WeightsError: naming ``origin`` and the keys or shapes that differ; the model is
        left as it was.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in own.items()
             if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) ({_few(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) ({_few(unexpected)})")
        if wrong:
            k, got, want = wrong[0]
            parts.append(f"{len(wrong)} shape mismatch(es) ({k}: file {list(got)}, "
                         f"model {list(want)})")
        raise WeightsError(f"{origin}: does not fit the model: " + "; ".join(parts)
                           + ". Check the model name and its kwargs")
    model.load_state_dict(state, strict=True)
    return model


def save_weights(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write the model's weights as safetensors, atomically (tied tensors are handled)."""
    from safetensors.torch import save_model

    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    save_model(model, str(tmp))
    os.replace(tmp, p)
    return p


def _few(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0][:200] if s else type(e).__name__
