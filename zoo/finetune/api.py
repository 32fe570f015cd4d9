"""``zoo.finetune.finetune``: one call for every technique, resumable and data-parallel.

Multi-process and multi-GPU
---------------------------
The same call runs under ``torch.distributed``. On one machine, ``nproc=N`` (``zoo
finetune ... --nproc N``) starts N processes on 127.0.0.1 (gloo on CPU, nccl when CUDA is
available, one GPU per process). Under a launcher, run the CLI as usual and the job's
environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``, ``LOCAL_RANK``)
is picked up::

    # one machine, 4 GPUs
    torchrun --standalone --nproc-per-node 4 -m zoo finetune resnet18.imagenet \\
        --data photos/ --num-classes 5 --device cuda --out runs/r18
    # a cluster: 2 nodes x 8 GPUs (run on each node, or through srun)
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d \\
        --rdzv-endpoint HEAD_NODE:29500 -m zoo finetune ... --device cuda --out /shared/run

``batch_size`` is the *global* batch: each process takes every N-th sample of it and
the gradients are summed, so N processes give the same updates as one (up to float
rounding); only rank 0 writes files. ``--out`` must be on a shared file system when
processes run on several machines, so that ``--resume`` finds the checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, ZooError

from .outputs import writing
from .techniques import TECHNIQUES


@dataclass
class Result:
    """What a fine-tuning run produced."""

    out: Path
    metrics: dict[str, Any]                 # the final (or best) epoch's validation metrics
    history: list[dict[str, Any]]
    trainable_params: int
    total_params: int
    model: Any = None                       # the trained plain nn.Module (in-process runs)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def trainable_percent(self) -> float:
        return 100.0 * self.trainable_params / max(self.total_params, 1)


# -- model loading -----------------------------------------------------------------------------

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
    from zoo import build
    from zoo.api import _looks_like_dir
    from zoo.api import spec as resolve
    from zoo.registry import default_registry
    from zoo.spec import InputSpec

    text = os.fspath(ref)
    if _looks_like_dir(text):
        if not Path(text).is_dir():
            raise UsageError(f"{text}: no such model directory")
        cfg = build.read_config(text)
        reg = default_registry()
        if cfg.get("name") not in reg:
            raise UsageError(f"{text}: made from model '{cfg.get('name')}', which is not in "
                             "the catalog; install its plugin")
        spec = reg.spec(cfg["name"])
        if cfg.get("input"):
            spec = replace(spec, input=InputSpec(**{k: tuple(v) if isinstance(v, list) else v
                                                    for k, v in cfg["input"].items()}))
        model = build.load_dir(text)
        return Loaded(model, spec, None, dict(cfg["kwargs"]), cfg.get("labels"), True, text)
    spec, tag = resolve(text)
    model = build.build(spec, tag)
    labels = list(spec.pretrained[tag].labels) if tag and spec.pretrained[tag].labels else None
    return Loaded(model, spec, tag, build.merged_kwargs(spec, tag, {}), labels,
                  tag is not None, text)


def _accepts(spec, name: str) -> bool:
    import inspect

    from zoo.build import builder_of

    try:
        return name in inspect.signature(builder_of(spec)).parameters
    except (TypeError, ValueError):
        return False


def _rebuild(loaded: Loaded, kwargs: dict[str, Any], *, keep_weights: bool, head: str | None,
             allow_new: str | None = None):
    """Build the architecture with new ``kwargs``; copy every weight that still fits
    (all but the head's when the class count changed)."""
    from zoo.build import builder_of

    new = builder_of(loaded.spec)(**kwargs)
    if keep_weights:
        own = new.state_dict()
        old = loaded.model.state_dict()
        prefix = _nesting_prefix(list(old), list(own))
        state = {prefix + k: v for k, v in old.items()
                 if prefix + k in own and own[prefix + k].shape == v.shape}
        missing = [k for k in own if k not in state]
        fresh = [h for h in (head, allow_new) if h]
        stray = [k for k in missing if not any(k.startswith(h + ".") for h in fresh)]
        if stray:
            raise UsageError(f"model '{loaded.spec.name}': changing {sorted(kwargs)} also "
                             f"changes {stray[0]} (not the head '{head}'); cannot keep weights")
        new.load_state_dict(state, strict=False)
    tok = getattr(loaded.model, "tokenizer", None)
    if tok is not None and getattr(new, "tokenizer", None) is None:
        new.tokenizer = tok
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


def _head_of(model, hooks: dict) -> str | None:
    """The hooks' head, else a top-level module with a conventional head name."""
    if hooks.get("head"):
        return str(hooks["head"])
    names = dict(model.named_children())
    return next((n for n in ("classifier", "head", "fc") if n in names), None)


def _fit_head(loaded: Loaded, hooks: dict, n_data: int, num_classes: int | None,
              data_labels: list[str]) -> tuple[Any, dict[str, Any], bool]:
    """Make the model's class count match the data's; returns (model, kwargs, replaced)."""
    from .techniques import class_kwarg, get_module, out_features

    key = class_kwarg(loaded.kwargs)
    head = hooks.get("head")
    current = loaded.kwargs.get(key) if key else (
        out_features(get_module(loaded.model, head)) if head else None)
    if current is None and key is None and _accepts(loaded.spec, "num_classes"):
        # An encoder without a head (minilm.sentence): build its classifier variant with
        # the encoder's weights inside.
        kwargs = {**loaded.kwargs, "num_classes": n_data}
        return _rebuild(loaded, kwargs, keep_weights=loaded.trained, head=None,
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
        raise UsageError(f"model '{loaded.spec.name}' has no class-count argument "
                         f"(num_classes/out_channels) to give {n_data} classes")
    kwargs = {**loaded.kwargs, key: n_data}
    return _rebuild(loaded, kwargs, keep_weights=loaded.trained, head=head), kwargs, True


# -- feature caching -----------------------------------------------------------------------------

def _cache_features(model, head: str, data, batch_size: int = 256):
    """Run the frozen backbone once; return TaskData of the head's inputs (or None when the
    head takes more than one input, e.g. a graph conv)."""
    import torch

    from .data import Split, TaskData
    from .loop import forward
    from .techniques import get_module

    module = get_module(model, head)
    captured: list = []

    def hook(_m, args, _kw=None):
        captured.append(args)

    handle = module.register_forward_pre_hook(hook)
    was = model.training
    model.eval()
    try:
        def run(split):
            feats = []
            for i in range(0, len(split), batch_size):
                captured.clear()
                part = split.take(range(i, min(i + batch_size, len(split))))
                with torch.no_grad():
                    forward(model, data.kind, part.inputs, data.graph)
                if len(captured) != 1 or len(captured[0]) != 1:
                    return None
                feats.append(captured[0][0].detach())
            return Split({"features": torch.cat(feats)}, split.y)

        train = run(data.train)
        if train is None:
            return None
        val = run(data.val) if data.val is not None and len(data.val) else None
    finally:
        handle.remove()
        model.train(was)
    return TaskData("features", train, val, data.labels, name=data.name, notes=data.notes)


# -- distributed -----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned_worker(rank: int, world: int, port: int, kwargs: dict[str, Any]) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    finetune(**kwargs)


def _init_distributed(device: str):
    """Join the job described by the environment (torchrun, --nproc); (Dist, we_started)."""
    from .loop import Dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), False
    import torch.distributed as tdist

    rank = int(os.environ.get("RANK", "0"))
    if tdist.is_initialized():
        return Dist(rank, world), False
    backend = "nccl" if device.startswith("cuda") else "gloo"
    tdist.init_process_group(backend=backend, init_method="env://", rank=rank,
                             world_size=world)
    return Dist(rank, world), True


# -- the entry point ---------------------------------------------------------------------------

def _check_options(*, epochs, batch_size, lr, limit, val_limit, nproc, warmup, label_smoothing,
                   metric, device, weight_decay, temperature, alpha, val_fraction,
                   num_classes) -> None:
    """Refuse bad option values before anything is loaded or trained (one line each)."""
    from .loop import METRIC_MODES

    checks = [
        (epochs >= 1, "--epochs must be at least 1"),
        (batch_size >= 1, "--batch-size must be at least 1"),
        (lr is None or lr >= 0, f"--lr must not be negative, got {lr}"),
        (limit is None or limit >= 1, f"--limit must be at least 1, got {limit}"),
        (val_limit is None or val_limit >= 1, f"--val-limit must be at least 1, got {val_limit}"),
        (nproc >= 1, f"--nproc must be at least 1, got {nproc}"),
        (0 <= warmup < 1 or warmup >= 1 and float(warmup).is_integer(),
         f"--warmup is a fraction of the steps in [0, 1) or a whole number of steps, got {warmup}"),
        (0 <= label_smoothing < 1, f"--label-smoothing must be in [0, 1), got {label_smoothing}"),
        (weight_decay >= 0, f"--weight-decay must be >= 0, got {weight_decay}"),
        (temperature > 0, f"--temperature must be positive, got {temperature}"),
        (0 <= alpha <= 1, f"--alpha must be in [0, 1], got {alpha}"),
        (0 < val_fraction < 1, f"the validation fraction must be in (0, 1), got {val_fraction}"),
        (num_classes is None or num_classes >= 2,
         f"--num-classes must be at least 2, got {num_classes}"),
        (metric in METRIC_MODES,
         f"unknown --metric '{metric}'; use one of {', '.join(METRIC_MODES)}"),
        (device == "cpu" or device.startswith(("cuda", "mps")),
         f"unknown --device '{device}'; use cpu, cuda, cuda:N or mps"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)


def _check_out(out: Path) -> None:
    """Fail before training if the output directory cannot be created or written.

    Missing parent directories are created (as ``mkdir -p``). Directories made for the
    check are removed again, so a run refused later (bad data, say) leaves nothing behind.
    """
    from .outputs import nearest_existing

    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: is a file, not a directory; choose another --out")
    base = nearest_existing(out)
    if base != out and not base.is_dir():
        raise UsageError(f"{out}: {base} is a file, not a directory; choose another --out")
    missing = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".zoo-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        where = "" if base == out else f" in {base}"
        raise UsageError(f"{out}: cannot write the output directory{where} "
                         f"({e.strerror or e}); "
                         "choose another --out") from None
    finally:
        for p in missing:  # deepest first
            with contextlib.suppress(OSError):
                p.rmdir()


def finetune(model: str | os.PathLike[str], data: str | os.PathLike[str], *,
             out: str | os.PathLike[str], technique: str = "full", epochs: int = 3,
             lr: float | None = None, batch_size: int = 32, seed: int = 0,
             val_data: str | os.PathLike[str] | None = None, val_fraction: float = 0.2,
             limit: int | None = None, val_limit: int | None = None,
             num_classes: int | None = None,
             freeze_groups: int = 0, freeze_patterns: Sequence[str] = (),
             cache_features: bool = True,
             lora_r: int = 8, lora_alpha: int = 16, lora_dropout: float = 0.0,
             lora_targets: Sequence[str] | None = None,
             teacher: str | os.PathLike[str] | None = None, temperature: float = 4.0,
             alpha: float = 0.7,
             layer_decay: float | None = None, group_lrs: Mapping[str, float] | None = None,
             weight_decay: float = 0.01, dropout: float | None = None,
             label_smoothing: float = 0.0, early_stopping: int | None = None,
             metric: str = "accuracy", optimizer: str = "adamw", schedule: str = "linear",
             warmup: float = 0.1, clip_grad: float | None = 1.0, max_length: int = 64,
             text_column: str = "text", label_column: str = "label",
             resume: bool = False, overwrite: bool = False, nproc: int = 1,
             device: str = "cpu", progress: bool = True,
             on_step: Callable[..., None] | None = None) -> Result:
    """Fine-tune ``model`` on ``data`` with ``technique``; write a model directory to ``out``.

    Args:
        model: ``NAME``, ``NAME.TAG`` or a directory saved by zoo (``zoo get --save``, an
            earlier ``finetune``).
        data: ``digits``, ``shapes``, ``sentiment``, ``karate``, an image folder (one
            sub-folder per class) or a ``.csv``/``.jsonl`` file (``text_column``,
            ``label_column``).
        technique: ``full``, ``freeze`` (``freeze_groups`` first layer groups and/or
            ``freeze_patterns``), ``feature-extract`` (frozen backbone, new head;
            ``cache_features`` runs the backbone once), ``lora`` (peft; ``lora_*``) or
            ``distill`` (``teacher``, ``temperature``, ``alpha``).
        out: the output directory: ``model.safetensors`` + ``config.json`` (``zoo get
            OUT`` rebuilds it), ``metrics.json``, ``curve.png``, ``checkpoints/last.pt``,
            and ``adapter/`` for LoRA.
        lr: peak learning rate (default 1e-3; 5e-5 for transformers with full/freeze).
        layer_decay: layer-wise LR decay over the hooks' ``layer_groups``.
        group_lrs: ``{module prefix or pattern: lr}`` (differential learning rates).
        weight_decay: AdamW decay; norms, biases and 1-d parameters get none.
        dropout: set every dropout layer's probability.
        early_stopping: patience in epochs on ``metric`` (accuracy, macro_f1, loss); the
            best epoch's weights are kept.
        optimizer, schedule, warmup: AdamW with linear warmup (10% of steps) then linear
            decay by default; ``adam``/``sgd``; ``cosine``/``constant``.
        resume: continue from ``out/checkpoints/last.pt``.
        nproc: data-parallel processes on this machine (see the module docstring).
        on_step: called as ``on_step(epoch=, step=, model=)`` after each optimiser step.

    Returns:
        A :class:`Result` (validation metrics, history, parameter counts, the model).

    Raises:
        UsageError: bad data, options or class counts, an unwritable ``out`` or too little
            free disk space for the run's estimated files (checked before training), with
            what to do.
        TrainingDiverged: NaN/inf loss; the last good checkpoint stays in ``out``.
        OutputWriteError: a write failed mid-run (disk full, file-size limit); the last
            good checkpoint stays in ``out`` and ``resume=True`` continues from it.
        TrainingInterrupted: Ctrl-C (a ``KeyboardInterrupt``); likewise resumable.
    """
    args = {k: v for k, v in locals().items()}
    if technique not in TECHNIQUES:
        import difflib

        close = difflib.get_close_matches(technique, TECHNIQUES, n=1)
        raise UsageError(f"unknown technique '{technique}'"
                         + (f"; did you mean '{close[0]}'?" if close else "")
                         + f" Known: {', '.join(TECHNIQUES)}")
    if technique == "distill" and teacher is None:
        raise UsageError("--technique distill needs --teacher MODEL (NAME.TAG or DIR)")
    _check_options(epochs=epochs, batch_size=batch_size, lr=lr, limit=limit,
                   val_limit=val_limit, nproc=nproc, warmup=warmup,
                   label_smoothing=label_smoothing, metric=metric, device=device,
                   weight_decay=weight_decay, temperature=temperature, alpha=alpha,
                   val_fraction=val_fraction, num_classes=num_classes)
    out = Path(out)
    _check_out(out)
    if nproc > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _spawn(args, nproc, out)
    if technique == "sft":
        from .sft import finetune_sft

        return finetune_sft(**{k: v for k, v in args.items() if k != "technique"})
    import torch

    from zoo.api import finetune_hooks

    from . import report
    from .data import prepare
    from .loop import CHECKPOINT, TrainConfig, train
    from .optim import DEFAULT_NO_DECAY, make_optimizer, make_schedule, param_groups
    from .outputs import estimate_outputs
    from .techniques import (
        count_params,
        freeze,
        freeze_backbone,
        head_name,
        reset_head,
        set_dropout,
    )

    dist, started = _init_distributed(device)
    if device.startswith("cuda") and dist.world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', dist.rank))}"
    with _run_scope(out, started=started):
        if out.exists() and (out / CHECKPOINT).exists() and not (resume or overwrite):
            raise UsageError(f"{out}: holds a checkpoint of an earlier run; pass --resume to "
                             "continue it, or choose another --out")
        if dist.main:
            out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(seed)
        loaded = load_model(model)
        spec = loaded.spec
        hooks = finetune_hooks(spec)
        if dist.main:
            _remove_stale_temps(out)
        # Cheap and before the data loads: the final weights alone must fit. (Every rank
        # checks, so that all refuse together rather than wait for rank 0.)
        _check_space_for_weights(out, loaded.model, _head_of(loaded.model, hooks),
                                 resume=resume)
        task = prepare(data, loaded.model, spec, loaded.tag, val_data=val_data,
                       val_fraction=val_fraction, limit=limit, val_limit=val_limit,
                       max_length=max_length, text_column=text_column,
                       label_column=label_column)
        extra_kwargs: dict[str, Any] = dict(task.notes.get("kwargs", {}))
        if "vocab" in task.notes:
            # A vocabulary learned from this data: the model is rebuilt to its size, and
            # the saved config points at the vocabulary file.
            vocab_path = (out / "vocab.json").resolve()
            out.mkdir(parents=True, exist_ok=True)
            task.notes["vocab"].save(vocab_path)
            kw = {k: v for k, v in loaded.kwargs.items() if k != "vocab_size"}
            kw["vocab"] = str(vocab_path)
            torch.manual_seed(seed)
            loaded.model = _rebuild(loaded, kw, keep_weights=False, head=None)
            loaded.kwargs = kw
        net, kwargs, replaced = _fit_head(loaded, hooks, len(task.labels), num_classes,
                                          task.labels)
        kwargs = {**kwargs, **extra_kwargs}
        if lr is None:
            lr = 5e-5 if spec.family == "transformer" and technique in ("full", "freeze") \
                else 1e-3
        if dropout is not None:
            set_dropout(net, dropout)
        head = _head_of(net, hooks)
        if head and not hooks.get("head"):
            hooks = {**hooks, "head": head}
        info: dict[str, Any] = {"technique": technique}
        train_model, kind, task_for_train = net, task.kind, task
        teacher_model = teacher_task = None
        if technique == "freeze":
            frozen = freeze(net, groups=freeze_groups, layer_groups=hooks.get("layer_groups", ()),
                            patterns=freeze_patterns)
            if not frozen:
                raise UsageError("--technique freeze needs --freeze N (layer groups) or "
                                 "--freeze-pattern PATTERN")
            info["frozen"] = len(frozen)
        elif technique == "feature-extract":
            head = head_name(hooks, spec)
            torch.manual_seed(seed)
            reset_head(net, head)
            freeze_backbone(net, head)
            if cache_features:
                t0 = time.perf_counter()
                cached = _cache_features(net, head, task)
                if cached is not None:
                    info["feature_cache_seconds"] = round(time.perf_counter() - t0, 3)
                    from .techniques import get_module

                    train_model, kind, task_for_train = get_module(net, head), "features", cached
        elif technique == "lora":
            from .lora import apply_lora

            torch.manual_seed(seed)
            train_model = apply_lora(net, hooks, head=head, r=lora_r, alpha=lora_alpha,
                                     dropout=lora_dropout,
                                     targets=list(lora_targets) if lora_targets else None)
        elif technique == "distill":
            tl = load_model(teacher)
            teacher_model = tl.model.eval()
            for p in teacher_model.parameters():
                p.requires_grad_(False)
            teacher_task = task
            if tl.spec.input_for(tl.tag) != spec.input_for(loaded.tag) or \
                    tl.spec.family != spec.family:
                # The teacher sees the same samples in its own input format (size,
                # normalisation, tokenizer): prepare() is deterministic, so rows align.
                teacher_task = prepare(data, teacher_model, tl.spec, tl.tag, val_data=val_data,
                                       val_fraction=val_fraction, limit=limit,
                                       val_limit=val_limit, max_length=max_length,
                                       text_column=text_column, label_column=label_column)
                if not torch.equal(teacher_task.train.y, task.train.y):
                    raise UsageError(f"teacher '{teacher}' and the student see different "
                                     "samples; give both the same data")
            with torch.no_grad():
                from .loop import forward

                probe = forward(teacher_model, teacher_task.kind,
                                teacher_task.train.take([0]).inputs, teacher_task.graph)
            if probe.shape[-1] != len(task.labels):
                raise UsageError(f"teacher '{teacher}' has {probe.shape[-1]} classes but the "
                                 f"data has {len(task.labels)}; fine-tune the teacher first")
        trainable, total = count_params(train_model if technique == "lora" else net)
        train_model.to(device)
        if teacher_model is not None:
            teacher_model.to(device)
        task_for_train = task_for_train.to(device)
        if dist.world > 1:
            import torch.distributed as tdist

            for t in train_model.state_dict().values():
                tdist.broadcast(t, 0)
        estimate = estimate_outputs(
            net, train_model=train_model, optimizer=optimizer,
            early_stopping=early_stopping is not None, epochs=epochs,
            labels=len(task.labels), lora=technique == "lora")
        check_run_space(out, estimate, resume=resume, technique=technique)
        no_decay = list(hooks.get("no_decay") or DEFAULT_NO_DECAY)
        groups = param_groups(train_model, lr=lr, weight_decay=weight_decay,
                              layer_groups=hooks.get("layer_groups", ()) if kind != "features"
                              else (), layer_decay=layer_decay, group_lrs=group_lrs,
                              no_decay=no_decay)
        opt = make_optimizer(groups, optimizer, lr=lr)
        steps = epochs * math.ceil(len(task_for_train.train) / batch_size)
        sched = make_schedule(opt, steps, warmup=warmup, kind=schedule)
        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                          label_smoothing=label_smoothing, early_stopping=early_stopping,
                          metric=metric, clip_grad=clip_grad, temperature=temperature,
                          alpha=alpha)
        fingerprint = {"model": os.fspath(model), "data": os.fspath(data),
                       "technique": technique, "epochs": epochs, "batch_size": batch_size,
                       "lr": lr, "seed": seed, "world": dist.world, "limit": limit,
                       "num_classes": num_classes}
        bar = report.Progress(enabled=progress and dist.main)
        try:
            run = train(train_model, task_for_train, cfg, optimizer=opt, scheduler=sched,
                        out=out, kind=kind, teacher=teacher_model, resume=resume,
                        teacher_kind=teacher_task.kind if teacher_task is not None else None,
                        teacher_data=teacher_task.to(device) if teacher_task is not None
                        else None,
                        fingerprint=fingerprint, dist=dist, progress=bar, on_step=on_step)
        finally:
            bar.close()
        history = run["history"]
        final = dict(history[run["best_epoch"] - 1]) if run["best_epoch"] and \
            early_stopping is not None else dict(history[-1])
        final_metrics = {k: final[k] for k in ("accuracy", "macro_f1", "val_loss") if k in final}
        final_model = net
        if dist.main:
            kept = f"{out / CHECKPOINT} holds the last epoch ({history[-1]['epoch']})"
            if technique == "lora":
                from .lora import ADAPTER_DIR, merge, save_adapter

                with writing(out / ADAPTER_DIR, kept=kept):
                    save_adapter(train_model, out)
                final_model = merge(train_model)
            final_model.to("cpu")
            info.update({k: v for k, v in {
                "trainable_params": trainable, "total_params": total,
                "trainable_percent": round(100.0 * trainable / max(total, 1), 4),
                "head_replaced": replaced, "best_epoch": run["best_epoch"],
                "stopped_early": run["stopped_early"], "world_size": dist.world}.items()})
            with writing(out / "model.safetensors", kept=kept):
                _save_model(final_model, out, spec=spec, tag=loaded.tag, kwargs=kwargs,
                            extra={"labels": task.labels, "metrics": final_metrics,
                                   "technique": technique, "base_model": os.fspath(model),
                                   "dataset": task.name,
                                   "finetune": {k: v for k, v in info.items()
                                                if k != "technique"}})
            with writing(out / report.METRICS_FILE, kept=kept):
                report.write_metrics(out, {
                    "model": os.fspath(model), "data": task.name, "labels": task.labels,
                    "train_samples": len(task.train),
                    "val_samples": len(task.val) if task.val is not None else 0,
                    "final": final_metrics, "epochs": history, **info,
                    "config": run["config"]})
            with writing(out / report.CURVE_FILE, kept=kept):
                report.plot_curves(out, history, f"{spec.name} on {task.name} ({technique})")
        if dist.world > 1:
            import torch.distributed as tdist

            tdist.barrier()
        return Result(out, final_metrics, history, trainable, total, model=final_model,
                      extra={**info, "output_bytes": estimate.as_dict()})


@contextlib.contextmanager
def _run_scope(out: Path, *, started: bool):
    """Around one run into ``out`` (finetune and finetune_sft share it).

    A run that fails removes the directories it created that are still empty (bad data,
    too little space: nothing written yet); Ctrl-C outside the training loop, which words
    its own message, becomes a :class:`TrainingInterrupted` saying whether ``--resume``
    can continue; and the process group this process ``started`` is destroyed however
    the run ends.
    """
    from .loop import CHECKPOINT
    from .outputs import TrainingInterrupted

    created = [p for p in (out / CHECKPOINT).parents if not p.exists()]
    try:
        yield
    except BaseException as e:
        _remove_empty(created)
        if isinstance(e, KeyboardInterrupt) and not isinstance(e, TrainingInterrupted):
            raise TrainingInterrupted(_interrupted_outside_training(out)) from None
        raise
    finally:
        if started:
            import torch.distributed as tdist

            tdist.destroy_process_group()


def _remove_empty(directories: Sequence[Path]) -> None:
    """rmdir each of ``directories`` (deepest first) that is still empty."""
    for d in directories:
        with contextlib.suppress(OSError):
            d.rmdir()


def _save_model(model, out: Path, *, spec, tag, kwargs, extra) -> None:
    """zoo.build.save into a scratch folder, then move its two files into ``out`` (save
    replaces its whole target directory, which would drop checkpoints and metrics).

    Each file arrives by rename, so ``out`` never holds half a file; a failure (a full
    disk) removes the scratch folder.
    """
    from zoo import build

    scratch = out / SCRATCH_DIR
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        build.save(model, scratch, spec=spec, tag=tag, kwargs=kwargs, extra=extra)
        # The weights first: config.json names their sha256, so a config never points
        # at weights that are not there yet.
        for name in sorted((f.name for f in scratch.iterdir()),
                           key=lambda n: n != build.WEIGHTS_FILE):
            os.replace(scratch / name, out / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


SCRATCH_DIR = ".model-tmp"


def _remove_stale_temps(out: Path) -> None:
    """Remove what a killed run left half-written: temp files and scratch folders."""
    from .loop import CHECKPOINT
    from .lora import ADAPTER_DIR
    from .outputs import remove_stale_temps

    remove_stale_temps([out, (out / CHECKPOINT).parent])
    if not out.is_dir():
        return
    for d in out.iterdir():
        # build.save's and save_adapter's scratch folders (tempfile.mkdtemp names)
        if d.is_dir() and d.name.startswith((SCRATCH_DIR, "." + SCRATCH_DIR + ".",
                                             f".{ADAPTER_DIR}.")):
            shutil.rmtree(d, ignore_errors=True)


def _interrupted_outside_training(out: Path) -> str:
    """Ctrl-C while loading, preparing or saving (the loop words its own message)."""
    from .loop import CHECKPOINT

    ckpt = out / CHECKPOINT
    if ckpt.is_file():
        return (f"interrupted; {ckpt} is intact: rerun the same command with --resume to "
                "continue from it")
    return "interrupted before the first checkpoint; nothing to resume: rerun the command"


def _check_space_for_weights(out: Path, model, head: str | None, *, resume: bool) -> None:
    """Before the data loads: refuse when not even the final weights fit."""
    from .loop import CHECKPOINT
    from .outputs import check_disk_space, weights_lower_bound

    if resume and (out / CHECKPOINT).is_file():
        return        # an earlier run's checkpoint already takes more than the weights
    check_disk_space(out, weights_lower_bound(model, skip=[head] if head else []),
                     what="the fine-tuned weights alone")


def check_run_space(out: Path, estimate, *, resume: bool, technique: str = "full",
                    free: int | None = None) -> None:
    """Refuse a run whose files (``estimate``, an :class:`~.outputs.OutputEstimate`) do not
    fit next to ``out``; when resuming, the checkpoint already on disk counts as written."""
    from .loop import CHECKPOINT
    from .outputs import check_disk_space, human_bytes

    ckpt = out / CHECKPOINT
    present = ckpt.stat().st_size if resume and ckpt.is_file() else 0
    needed = max(estimate.peak - present, 0)
    parts = [f"checkpoint {human_bytes(estimate.checkpoint)}, twice while it is replaced",
             f"weights {human_bytes(estimate.weights)}"]
    if estimate.adapter:
        parts.append(f"adapter {human_bytes(estimate.adapter)}")
    parts.append(f"metrics and curve {human_bytes(estimate.metadata)}")
    hint = ("; --technique lora or feature-extract write smaller checkpoints"
            if technique in ("full", "freeze", "distill") else "")
    check_disk_space(out, needed, what=f"this run's files ({'; '.join(parts)})", hint=hint,
                     free=free)


def _spawn(args: dict[str, Any], nproc: int, out: Path) -> Result:
    """Run ``nproc`` data-parallel processes on this machine; return rank 0's result."""
    import json

    import torch.multiprocessing as mp

    if args.get("on_step") is not None:
        raise UsageError("on_step callbacks cannot cross process boundaries; use nproc=1")
    kwargs = {**args, "nproc": 1}
    port = _free_port()
    try:
        mp.start_processes(_spawned_worker, args=(nproc, port, kwargs), nprocs=nproc,
                           join=True, start_method="spawn")
    except mp.ProcessRaisedException as e:
        last = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
        raise _worker_error(last) from None
    metrics = json.loads((out / "metrics.json").read_text())
    from zoo.build import load_dir

    print(f"{nproc} processes finished; outputs in {out}", file=sys.stderr)
    return Result(out, metrics["final"], metrics["epochs"], metrics["trainable_params"],
                  metrics["total_params"], model=load_dir(out), extra=metrics)


def _worker_error(last: str) -> ZooError:
    """The error a training process raised, as the same one-line error in the parent.

    torch.multiprocessing hands the worker's traceback over as text, whose last line is
    ``module.Class: message``. zoo's own errors come back as themselves (a full disk stays
    an OutputWriteError, exit code 1; a bad option a UsageError, exit 2): their message
    already says what to do. Anything else is reported as a failed worker.
    """
    from zoo import errors

    from . import outputs

    qual, sep, msg = last.partition(": ")
    if sep and qual.startswith("zoo."):
        kind = qual.rsplit(".", 1)[-1]
        cls = getattr(errors, kind, None) or getattr(outputs, kind, None)
        if isinstance(cls, type) and issubclass(cls, errors.ZooError):
            if cls.__init__ is ZooError.__init__:      # built from the message alone
                return cls(msg)
            # built from several fields (a name, a path): keep the message and exit code
            return (UsageError if cls.exit_code == 2 else ZooError)(msg)
    return ZooError(f"a training process failed ({last}); rerun with --nproc 1 "
                           "to see where")
