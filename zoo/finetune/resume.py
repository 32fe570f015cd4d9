"""Reading a fine-tuning checkpoint back for ``--resume``: data, checked before it is used.

A checkpoint (``OUT/checkpoints/last.pt``) is a file on disk that anything may have
replaced or damaged. It is read with ``torch.load(weights_only=True)`` (no pickle code
runs) and then checked key by key against what :func:`zoo.finetune.loop.train` writes, so a
truncated file, a pickle, a wrong type or a state that does not fit the model is one line
saying how to start over, never a traceback half-way through restoring the run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from zoo.errors import UsageError

_KEYS = {"epoch": int, "model": dict, "optimizer": dict, "scheduler": dict,
         "rng": torch.Tensor, "history": list, "best": dict, "fingerprint": dict}


def _refuse(path: Path, why: str) -> UsageError:
    why = " ".join(why.split())[:200]
    return UsageError(f"{path}: not a checkpoint this run can resume from ({why}); drop "
                      "--resume and pass --overwrite to start over")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, every key present and of the type ``train`` wrote.

    Raises:
        UsageError: unreadable, truncated, a pickle, or a key missing or mistyped.
    """
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - zip, pickle and tensor errors share no base
        raise _refuse(path, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                      ) from None
    if not isinstance(ck, dict):
        raise _refuse(path, f"it holds a {type(ck).__name__}, not a dict")
    for key, kind in _KEYS.items():
        if key not in ck:
            raise _refuse(path, f"no '{key}'")
        value = ck[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _refuse(path, f"'{key}' is a {type(value).__name__}, not {kind.__name__}")
    if ck["epoch"] < 1 or len(ck["history"]) != ck["epoch"] or not all(
            isinstance(h, dict) for h in ck["history"]):
        raise _refuse(path, "its epoch and history do not match")
    if not _tensors(ck["model"]):
        raise _refuse(path, "'model' is not a state dict of tensors")
    best = ck["best"]
    if not {"epoch", "value", "state", "bad"} <= set(best) \
            or not isinstance(best["bad"], int) or not isinstance(best["epoch"], int) \
            or not (best["value"] is None or (isinstance(best["value"], float | int)
                                              and math.isfinite(best["value"]))) \
            or not (best["state"] is None or _tensors(best["state"])):
        raise _refuse(path, "'best' is not what a run records")
    if ck["rng"].dtype != torch.uint8 or ck["rng"].dim() != 1:
        raise _refuse(path, "'rng' is not a random generator state")
    return ck


def _tensors(state: Any) -> bool:
    return isinstance(state, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())


def restore(path: Path, ck: dict[str, Any], *, model, optimizer, scheduler) -> None:
    """Load a :func:`read_checkpoint` result into the run's objects, or one line.

    The scheduler's state is checked against the scheduler's own keys and value types
    first: ``load_state_dict`` copies whatever it is given into the scheduler's attributes.
    """
    mine = scheduler.state_dict()
    theirs = ck["scheduler"]
    odd = sorted(str(k) for k in theirs if k not in mine
                 or type(theirs[k]) is not type(mine[k]))
    if odd:
        raise _refuse(path, f"its scheduler state has unexpected {', '.join(odd[:3])}")
    try:
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(theirs)
        torch.set_rng_state(ck["rng"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
        raise _refuse(path, f"it does not fit this model and optimizer: {type(e).__name__}: "
                      f"{str(e).splitlines()[0] if str(e) else ''}") from None
