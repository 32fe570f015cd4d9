"""The model side of a fine-tuning run: load the base, fit its head to the classes, and
cache a frozen backbone's features."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zoo.errors import UsageError


@dataclass
class Loaded:
    model: Any
    spec: Any
    tag: str | None
    kwargs: dict[str, Any]
    labels: list[str] | None
    trained: bool                           # pretrained weights (a tag or a saved dir)
    ref: str


def load_model(ref: str | os.PathLike[str]) -> Loaded:
    """Build ``NAME[.TAG]`` or rebuild a saved directory, with what fine-tuning needs."""
    from zoo.api import _looks_like_dir
    from zoo.api import spec as resolve
    from zoo.loading import build

    text = os.fspath(ref)
    if _looks_like_dir(text):
        if not Path(text).is_dir():
            raise UsageError(f"{text}: no such model directory")
        from zoo.loading.trust import checked_kwargs, saved_input, saved_labels

        model = build.load_dir(text)        # refuses a config the catalog does not allow
        cfg = build.read_config(text)
        spec, fn = build.trusted_spec(text, cfg)
        where = str(Path(text) / build.CONFIG_FILE)
        inp = saved_input(cfg, where)
        if inp is not None:
            spec = replace(spec, input=inp)
        return Loaded(model, spec, None, checked_kwargs(text, cfg, spec, fn),
                      saved_labels(cfg, where), True, text)
    spec, tag = resolve(text)
    model = build.build(spec, tag)
    labels = list(spec.pretrained[tag].labels) if tag and spec.pretrained[tag].labels else None
    return Loaded(model, spec, tag, build.merged_kwargs(spec, tag, {}), labels,
                  tag is not None, text)


def _accepts(spec, name: str, *, passthrough: bool = False) -> bool:
    """Whether the builder takes ``name``; with ``passthrough``, also through ``**kwargs``
    (torchvision's and timm's builders pass ``num_classes`` on to the model)."""
    import inspect

    from zoo.loading.build import builder_of

    try:
        params = inspect.signature(builder_of(spec)).parameters
    except (TypeError, ValueError):
        return False
    return name in params or (passthrough and any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()))


def rebuild(loaded: Loaded, kwargs: dict[str, Any], *, keep_weights: bool, head: str | None,
             allow_new: str | None = None):
    """Build the architecture with new ``kwargs``; copy every weight that still fits
    (all but the head's when the class count changed)."""
    from zoo.loading.build import builder_of

    fresh = [h for h in (head, allow_new) if h]
    new = _onto_old_weights(loaded, builder_of(loaded.spec), kwargs, fresh) \
        if keep_weights else None
    if new is not None:
        tok = getattr(loaded.model, "tokenizer", None)
        if tok is not None and getattr(new, "tokenizer", None) is None:
            new.tokenizer = tok
        return new
    try:
        new = builder_of(loaded.spec)(**kwargs)
    except TypeError as e:
        extra = sorted(set(kwargs) - set(loaded.kwargs))
        raise UsageError(f"model '{loaded.spec.name}': its builder does not take "
                         f"{', '.join(extra) or sorted(kwargs)} ({e}); pick a model whose "
                         "builder sets the class count") from None
    if keep_weights:
        own = new.state_dict()
        old = loaded.model.state_dict()
        prefix = _nesting_prefix(list(old), list(own))
        state = {prefix + k: v for k, v in old.items()
                 if prefix + k in own and own[prefix + k].shape == v.shape}
        missing = [k for k in own if k not in state]
        stray = [k for k in missing if not any(k.startswith(h + ".") for h in fresh)]
        if stray:
            raise UsageError(f"model '{loaded.spec.name}': changing {sorted(kwargs)} also "
                             f"changes {stray[0]} (not the head '{head}'); cannot keep weights")
        new.load_state_dict(state, strict=False)
    tok = getattr(loaded.model, "tokenizer", None)
    if tok is not None and getattr(new, "tokenizer", None) is None:
        new.tokenizer = tok
    return new


def _onto_old_weights(loaded: Loaded, builder, kwargs: dict[str, Any], fresh: list[str]):
    """The new architecture built on the meta device around the old model's tensors, so
    that only the new head is initialised: no second random init of weights that are
    replaced anyway (MiniLM: 0.4 s, and no second copy of its 90 MB). ``None`` when the
    model cannot be made that way; the caller then builds it in full."""
    import torch

    try:
        with torch.device("meta"):
            new = builder(**kwargs)
    except Exception:
        return None
    old_state = loaded.model.state_dict()
    own = new.state_dict()
    prefix = _nesting_prefix(list(old_state), list(own))
    state = {prefix + k: v for k, v in old_state.items()
             if prefix + k in own and own[prefix + k].shape == v.shape}
    if any(not any(k.startswith(h + ".") for h in fresh) for k in own if k not in state):
        return None            # more than the head changes: the full path words the error
    new.load_state_dict(state, strict=False, assign=True)
    old_buffers = dict(loaded.model.named_buffers())
    for name, buf in list(new.named_buffers()):   # non-persistent ones (position ids)
        if buf.is_meta:
            src = old_buffers.get(name[len(prefix):] if name.startswith(prefix) else name)
            if src is None or src.shape != buf.shape:
                return None
            owner, _, attr = name.rpartition(".")
            new.get_submodule(owner)._buffers[attr] = src
    init = getattr(new, "_init_weights", None)     # transformers' own initialisation
    for module in new.modules():
        if any(p.is_meta for p in module.parameters(recurse=False)):
            module.to_empty(device="cpu", recurse=False)
            if callable(init):
                init(module)
            elif callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()
            else:
                return None
    if any(t.is_meta for t in (*new.parameters(), *new.buffers())):
        return None
    return new


def _nesting_prefix(old: list[str], own: list[str]) -> str:
    """``""`` when names match; else the prefix under which the new model nests the old one
    (an encoder built alone, then inside a classifier as ``bert.``)."""
    if not old or old[0] in own:
        return ""
    for k in own:
        if k.endswith("." + old[0]):
            prefix = k[: -len(old[0])]
            if sum(prefix + o in own for o in old) >= 0.9 * len(old):
                return prefix
    return ""


def head_of(model, hooks: dict) -> str | None:
    """The hooks' head, else a top-level module with a conventional head name."""
    if hooks.get("head"):
        return str(hooks["head"])
    names = dict(model.named_children())
    return next((n for n in ("classifier", "head", "fc") if n in names), None)


def fit_head(loaded: Loaded, hooks: dict, n_data: int, num_classes: int | None,
              data_labels: list[str]) -> tuple[Any, dict[str, Any], bool]:
    """Make the model's class count match the data's; returns (model, kwargs, replaced)."""
    from zoo.finetune.techniques import class_kwarg, get_module, out_features

    key = class_kwarg(loaded.kwargs)
    head = hooks.get("head")
    current = loaded.kwargs.get(key) if key else (
        out_features(get_module(loaded.model, head)) if head else None)
    if current is None and key is None and _accepts(loaded.spec, "num_classes"):
        # An encoder without a head (minilm.sentence): build its classifier variant with
        # the encoder's weights inside.
        kwargs = {**loaded.kwargs, "num_classes": n_data}
        return rebuild(loaded, kwargs, keep_weights=loaded.trained, head=None,
                        allow_new="classifier"), kwargs, True
    if num_classes is not None and num_classes != n_data:
        raise UsageError(f"--num-classes {num_classes} but the data has {n_data} classes "
                         f"({', '.join(data_labels)}); give --num-classes {n_data}")
    if current is None or current == n_data:
        return loaded.model, loaded.kwargs, False
    if loaded.trained and num_classes is None:
        raise UsageError(
            f"model '{loaded.ref}' has {current} classes but the data has {n_data} "
            f"({', '.join(data_labels[:6])}{'...' if n_data > 6 else ''}); pass "
            f"--num-classes {n_data} to replace its head '{head}'")
    if key is None:
        if not _accepts(loaded.spec, "num_classes", passthrough=True):
            raise UsageError(f"model '{loaded.spec.name}' has no class-count argument "
                             f"(num_classes/out_channels) to give {n_data} classes")
        key = "num_classes"
    kwargs = {**loaded.kwargs, key: n_data}
    return rebuild(loaded, kwargs, keep_weights=loaded.trained, head=head), kwargs, True


def precompute_features(model, head: str, data, batch_size: int = 64):
    """Run the frozen backbone once; return TaskData of the head's inputs (or None when the
    head takes more than one input, e.g. a graph conv)."""
    import torch

    from zoo.finetune.data import Split, TaskData
    from zoo.finetune.loop import eval_chunks, forward
    from zoo.finetune.techniques import get_module

    module = get_module(model, head)
    captured: list = []

    def hook(_m, args, _kw=None):
        captured.append(args)

    handle = module.register_forward_pre_hook(hook)
    was = model.training
    model.eval()
    try:
        def run(split):
            feats = None
            for chunk in eval_chunks(split, batch_size):
                captured.clear()
                part = split.take(chunk)
                with torch.no_grad():
                    forward(model, data.kind, part.inputs, data.graph)
                if len(captured) != 1 or len(captured[0]) != 1:
                    return None
                got = captured[0][0].detach()
                if feats is None:
                    feats = got.new_empty((len(split), *got.shape[1:]))
                feats[chunk] = got
            return Split({"features": feats}, split.y)

        train = run(data.train)
        if train is None:
            return None
        val = run(data.val) if data.val is not None and len(data.val) else None
    finally:
        handle.remove()
        model.train(was)
    return TaskData("features", train, val, data.labels, name=data.name, notes=data.notes)
