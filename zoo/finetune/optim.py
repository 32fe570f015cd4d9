"""Optimiser parameter groups (differential and layer-wise decayed learning rates, no weight
decay on norms and biases) and the learning-rate schedule (linear warmup, then decay).

The learning rate of each parameter is decided here, in the optimiser's param groups,
so any torch optimiser applies it (timm's ``layer_decay`` only works through timm's own
schedulers reading ``lr_scale``; a plain optimiser ignores that key).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from zoo.errors import UsageError

DEFAULT_NO_DECAY = ("bias", "norm", "bn", "LayerNorm", "ln_")


def _strip(name: str) -> str:
    """Parameter name without the wrappers peft adds, for matching catalog prefixes."""
    for prefix in ("base_model.model.", "module."):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name.replace(".base_layer.", ".").replace(".modules_to_save.default.", ".")


def matches(name: str, pattern: str) -> bool:
    """``pattern`` is a module prefix (``features.0``) or a shell pattern (``*.bias``)."""
    name = _strip(name)
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return name == pattern or name.startswith(pattern + ".")


def group_index(name: str, groups: Sequence[str]) -> int | None:
    """Index of the layer group (ordered, input side first) holding parameter ``name``."""
    for i, g in enumerate(groups):
        if matches(name, g):
            return i
    return None


def is_no_decay(name: str, param: torch.Tensor, patterns: Sequence[str]) -> bool:
    """Biases, norm layers and other 1-d parameters get no weight decay."""
    if param.ndim <= 1:
        return True
    short = _strip(name)
    return any(p in short for p in patterns)


def param_groups(model: torch.nn.Module, *, lr: float, weight_decay: float = 0.01,
                 layer_groups: Sequence[str] = (), layer_decay: float | None = None,
                 group_lrs: Mapping[str, float] | None = None,
                 no_decay: Sequence[str] = DEFAULT_NO_DECAY) -> list[dict[str, Any]]:
    """Trainable parameters split into optimiser groups, each with its own lr and decay.

    Args:
        lr: the base learning rate (the head's, with layer decay).
        layer_groups: ordered module prefixes, input side first (from the finetune hooks).
        layer_decay: group ``i`` of ``n`` trains at ``lr * layer_decay ** (n - 1 - i)``;
            parameters in no group (usually the head) train at ``lr``.
        group_lrs: explicit ``{prefix or pattern: lr}`` overrides, checked first.
        no_decay: name fragments of parameters that get no weight decay (plus all 1-d ones).
    """
    if layer_decay is not None and not 0 < layer_decay <= 1:
        raise UsageError(f"layer decay must be in (0, 1], got {layer_decay}")
    n = len(layer_groups)
    buckets: dict[tuple[float, float], list[torch.Tensor]] = {}
    names: dict[tuple[float, float], list[str]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        p_lr = lr
        explicit = next((v for k, v in (group_lrs or {}).items() if matches(name, k)), None)
        if explicit is not None:
            p_lr = float(explicit)
        elif layer_decay is not None and n:
            gi = group_index(name, layer_groups)
            if gi is not None:
                p_lr = lr * layer_decay ** (n - 1 - gi)
        wd = 0.0 if is_no_decay(name, p, no_decay) else weight_decay
        buckets.setdefault((p_lr, wd), []).append(p)
        names.setdefault((p_lr, wd), []).append(name)
    if not buckets:
        raise UsageError("no trainable parameters: the technique froze everything; "
                         "freeze fewer layers")
    return [{"params": ps, "lr": k[0], "weight_decay": k[1], "names": names[k]}
            for k, ps in sorted(buckets.items(), key=lambda kv: kv[0])]


def make_optimizer(groups: list[dict[str, Any]], name: str = "adamw", *, lr: float,
                   momentum: float = 0.9) -> torch.optim.Optimizer:
    """AdamW (default), Adam or SGD over ``groups`` (their ``names`` keys are dropped)."""
    clean = [{k: v for k, v in g.items() if k != "names"} for g in groups]
    name = name.lower()
    if name in ("adamw", "adam"):
        cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        return cls(clean, lr=lr, **_fast_kernel(clean))
    if name == "sgd":
        return torch.optim.SGD(clean, lr=lr, momentum=momentum)
    raise UsageError(f"unknown optimizer '{name}'; use adamw, adam or sgd")


def _fast_kernel(groups: list[dict[str, Any]]) -> dict[str, bool]:
    """``fused=True`` where torch has a fused Adam kernel for every parameter (CPU and CUDA
    floats), else ``foreach=True``.

    On CPU torch defaults to its per-parameter Python loop: on MiniLM (200 tensors,
    22.6 M weights, 1 thread) a step took 0.63 s that way, 0.51 s with foreach and
    0.06 s fused, about a quarter of each training step saved.
    """
    params = [p for g in groups for p in g["params"]]
    if params and all(p.device.type in ("cpu", "cuda") and p.is_floating_point()
                      for p in params) and len({p.device for p in params}) == 1:
        return {"fused": True}
    return {"foreach": True}


def make_schedule(optimizer: torch.optim.Optimizer, total_steps: int, *, warmup: float = 0.1,
                  kind: str = "linear") -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over ``warmup`` (a fraction of steps, or a step count if >= 1), then
    linear (or cosine) decay to zero, or constant; the BERT recipe by default."""
    warm = int(warmup) if warmup >= 1 else int(round(total_steps * warmup))
    total = max(total_steps, 1)
    if kind not in ("linear", "cosine", "constant"):
        raise UsageError(f"unknown schedule '{kind}'; use linear, cosine or constant")

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if kind == "constant":
            return 1.0
        # Strictly below the peak right after warmup and never exactly 0 on a real step.
        progress = (step - warm + 1) / max(1, total - warm + 1)
        progress = min(max(progress, 0.0), 1.0)
        if kind == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        return max(0.0, 1.0 - progress)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
