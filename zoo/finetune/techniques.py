"""What a technique changes in a model before training: the head, frozen parts, dropout.

- ``full``: every weight trains.
- ``freeze``: the first N layer groups (from the finetune hooks) or parameters matching
  name patterns are frozen (``requires_grad=False``); frozen weights stay bit-identical.
- ``feature-extract``: everything but the head is frozen and in eval mode (batch norm
  statistics and dropout fixed), and the head starts fresh.
- ``lora`` (:mod:`zoo.finetune.lora`) and ``distill`` (:mod:`zoo.finetune.distill`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from zoo.errors import UsageError
from zoo.finetune.optim import group_index, matches

TECHNIQUES = ("full", "freeze", "feature-extract", "lora", "distill", "sft")
#: Builder keyword arguments that set the number of classes, by convention.
CLASS_KWARGS = ("num_classes", "out_channels", "num_labels")


def get_module(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise UsageError(f"the model has no module '{name}' (the finetune hooks' head); "
                         "fix the catalog's finetune.head") from None


def head_name(hooks: dict, spec) -> str:
    head = hooks.get("head")
    if not head:
        raise UsageError(f"model '{spec.name}' declares no head (finetune.head in the "
                         "catalog); cannot replace or train it alone")
    return str(head)


def out_features(module: nn.Module) -> int | None:
    """Number of outputs of a head module (Linear, conv, torch_geometric layers, MLPs)."""
    for attr in ("out_features", "out_channels"):
        if isinstance(getattr(module, attr, None), int):
            return getattr(module, attr)
    last = None
    for m in module.modules():
        for attr in ("out_features", "out_channels"):
            if isinstance(getattr(m, attr, None), int) and m is not module:
                last = getattr(m, attr)
    return last


def class_kwarg(kwargs: dict) -> str | None:
    return next((k for k in CLASS_KWARGS if k in kwargs), None)


def reset_head(model: nn.Module, head: str) -> None:
    """Re-initialise the head's parameters (a new head on the same backbone)."""
    for m in get_module(model, head).modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()


def resolve_layer_groups(model: nn.Module, groups: Sequence[str], *,
                         split_blocks: bool = False) -> list[str]:
    """The catalog's layer groups as names in ``model`` (input side first).

    A group is found as given or nested one level deeper (a classifier built around an
    encoder names its ``embeddings`` ``bert.embeddings``); a group this variant lacks (the
    pooler of a mean-pooling classifier) is dropped. With ``split_blocks`` (transformers),
    a group holding a stack of same-type blocks (``encoder`` -> ``encoder.layer.0`` ...)
    becomes one group per block, so ``--freeze N`` and ``--layer-decay`` work per layer.
    """
    modules = dict(model.named_modules())
    names = set(modules) | {n for n, _ in model.named_parameters()}
    out: list[str] = []
    for g in groups:
        if any(ch in g for ch in "*?["):
            out.append(g)
            continue
        name = g if g in names else min(
            (n for n in names if n.endswith("." + g)), key=len, default=None)
        if name is None:
            continue
        out.extend(_blocks(modules[name], name) if split_blocks and name in modules
                   else [name])
    return out


def _blocks(module: nn.Module, name: str) -> list[str]:
    """``name``'s stack of same-type blocks (through single-child wrappers), or [name]."""
    path, m = name, module
    while True:
        kids = [(n, c) for n, c in m.named_children() if next(c.parameters(), None) is not None]
        if isinstance(m, nn.ModuleList | nn.Sequential) and len(kids) >= 2 \
                and len({type(c) for _, c in kids}) == 1:
            return [f"{path}.{n}" for n, _ in kids]
        if len(kids) != 1 or next(m.parameters(recurse=False), None) is not None:
            return [name]
        path, m = f"{path}.{kids[0][0]}", kids[0][1]


def freeze(model: nn.Module, *, groups: int = 0, layer_groups: Sequence[str] = (),
           patterns: Sequence[str] = ()) -> list[str]:
    """Freeze the first ``groups`` layer groups and every parameter matching ``patterns``.

    Returns the frozen parameter names.
    """
    if groups > len(layer_groups):
        raise UsageError(f"cannot freeze {groups} layer groups: the model declares "
                         f"{len(layer_groups)} ({', '.join(layer_groups) or 'none'})")
    if groups and not layer_groups:
        raise UsageError("the model declares no layer groups; freeze by name with "
                         "--freeze-pattern instead")
    frozen = []
    for name, p in model.named_parameters():
        gi = group_index(name, layer_groups[:groups]) if groups else None
        if gi is not None or any(matches(name, pat) for pat in patterns):
            p.requires_grad_(False)
            frozen.append(name)
    if (groups or patterns) and not frozen:
        what = ([f"layer groups {list(layer_groups[:groups])}"] if groups else []) + \
            ([f"patterns {list(patterns)}"] if patterns else [])
        raise UsageError(f"nothing matched the freeze {' or '.join(what)}; parameter names "
                         f"look like '{next(iter(dict(model.named_parameters())), '')}'")
    return frozen


def freeze_backbone(model: nn.Module, head: str) -> list[str]:
    """Freeze everything but ``head`` (feature extraction)."""
    frozen = []
    for name, p in model.named_parameters():
        if not matches(name, head):
            p.requires_grad_(False)
            frozen.append(name)
    return frozen


def set_dropout(model: nn.Module, p: float) -> int:
    """Set the probability of every dropout layer; returns how many were changed."""
    if not 0 <= p < 1:
        raise UsageError(f"dropout must be in [0, 1), got {p}")
    n = 0
    for m in model.modules():
        # transformers and timm sometimes define their own Dropout classes with a ``p``.
        if isinstance(m, nn.modules.dropout._DropoutNd) or (
                type(m).__name__.endswith("Dropout") and hasattr(m, "p")):
            m.p = p
            n += 1
    return n


def count_params(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def frozen_modules_eval(model: nn.Module) -> None:
    """Put modules whose parameters are all frozen in eval mode (fixed BN stats, no dropout)."""
    for m in model.modules():
        params = list(m.parameters(recurse=False))
        if params and not any(p.requires_grad for p in params):
            m.eval()


def snapshot(model: nn.Module, names: Sequence[str]) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {n: params[n].detach().clone() for n in names}
