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

The model trains inside torch's ``DistributedDataParallel``. ``batch_size`` is the
*global* batch: each process takes every N-th sample of it and DDP averages the
gradients, so N processes give the same updates as one (up to float rounding), and a
run resumes on another number of processes. Only rank 0 writes files. ``--out`` must be
on a shared file system when processes run on several machines, so that ``--resume``
finds the checkpoint.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from zoo.errors import UsageError
from zoo.finetune.distributed import init_distributed, launch, local_rank
from zoo.finetune.model import fit_head, head_of, load_model, precompute_features, rebuild
from zoo.finetune.outputs import writing
from zoo.finetune.run import (
    Result,
    check_nothing_to_replace,
    check_out,
    check_run_space,
    check_space_for_weights,
    remove_leftovers,
    run_scope,
    save_model,
    saved_facts,
)
from zoo.finetune.techniques import TECHNIQUES


def _check_options(*, epochs, batch_size, lr, limit, val_limit, nproc, warmup, label_smoothing,
                   metric, metrics, device, weight_decay, temperature, alpha, val_fraction,
                   num_classes, optimizer, schedule) -> None:
    """Refuse bad option values before anything is loaded or trained (one line each)."""
    checks = [
        (epochs is None or epochs >= 1, "--epochs must be at least 1"),
        (batch_size is None or batch_size >= 1, "--batch-size must be at least 1"),
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
        (optimizer.lower() in ("adamw", "adam", "sgd"),
         f"unknown optimizer '{optimizer}'; use adamw, adam or sgd"),
        (schedule in ("linear", "cosine", "constant"),
         f"unknown schedule '{schedule}'; use linear, cosine or constant"),
        (metric is None or metric in metrics,
         f"unknown --metric '{metric}'; use one of {', '.join(metrics)}"),
        (device == "cpu" or device.startswith(("cuda", "mps")),
         f"unknown --device '{device}'; use cpu, cuda, cuda:N or mps"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)


def finetune(model: str | os.PathLike[str], data: str | os.PathLike[str], *,
             out: str | os.PathLike[str], technique: str = "full", epochs: int | None = None,
             lr: float | None = None, batch_size: int | None = None, seed: int = 0,
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
             metric: str | None = None, optimizer: str = "adamw", schedule: str = "linear",
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
        epochs, batch_size, lr: left out (``None``), they are chosen from the data's
            size, the technique and the base (:mod:`zoo.finetune.defaults`: at least 100
            optimiser steps, 200 from random weights; lr 5e-5 for trained transformers,
            1e-3 for small models and LoRA, 5e-3 for a new head alone...) and printed
            with the run's settings.
        layer_decay: layer-wise LR decay over the hooks' ``layer_groups``.
        group_lrs: ``{module prefix or pattern: lr}`` (differential learning rates).
        weight_decay: AdamW decay; norms, biases and 1-d parameters get none.
        dropout: set every dropout layer's probability.
        early_stopping: patience in epochs on ``metric``; the best epoch's weights are
            kept. ``metric`` defaults to the task's own (accuracy for classifiers; see
            :mod:`zoo.finetune.recipes` for the others).
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
    if technique == "full" and (freeze_groups or freeze_patterns):
        technique = "freeze"        # --freeze N alone asks for it
    if technique == "distill" and teacher is None:
        raise UsageError("--technique distill needs --teacher MODEL (NAME.TAG or DIR)")
    from zoo.finetune.recipes import DataOptions, recipe_of

    # The model's task decides how it trains: classifiers below, any other task (and
    # technique sft) by its own recipe.
    recipe = recipe_of(model, technique)
    recipe.check(technique=technique, metric=metric)
    _check_options(metrics=recipe.modes, epochs=epochs, batch_size=batch_size, lr=lr, limit=limit,
                   val_limit=val_limit, nproc=nproc, warmup=warmup,
                   label_smoothing=label_smoothing, metric=metric, device=device,
                   weight_decay=weight_decay, temperature=temperature, alpha=alpha,
                   val_fraction=val_fraction, num_classes=num_classes,
                   optimizer=optimizer, schedule=schedule)
    out = Path(out)
    check_out(out)
    if nproc > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return launch(finetune, args, nproc, out)
    if not recipe.classifier:
        return recipe.run(**args)
    metric = metric or recipe.metric
    import torch

    from zoo.api import finetune_hooks
    from zoo.finetune import defaults, report
    from zoo.finetune.data import prepare
    from zoo.finetune.loop import CHECKPOINT, TrainConfig, train
    from zoo.finetune.optim import DEFAULT_NO_DECAY, make_optimizer, make_schedule, param_groups
    from zoo.finetune.outputs import estimate_outputs
    from zoo.finetune.techniques import (
        count_params,
        freeze,
        freeze_backbone,
        head_name,
        reset_head,
        resolve_layer_groups,
        set_dropout,
    )

    dist, started = init_distributed(device)
    if device.startswith("cuda") and dist.world > 1:
        device = f"cuda:{local_rank()}"
    with run_scope(out, started=started):
        if out.exists() and (out / CHECKPOINT).exists() and not (resume or overwrite):
            raise UsageError(f"{out}: holds a checkpoint of an earlier run; pass --resume to "
                             "continue it, or choose another --out")
        check_nothing_to_replace(out, resume=resume, overwrite=overwrite)
        if dist.main:
            out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(seed)
        loaded = load_model(model)
        spec = loaded.spec
        hooks = finetune_hooks(spec)
        if dist.main:
            remove_leftovers(out)
        # Cheap and before the data loads: the final weights alone must fit. (Every rank
        # checks, so that all refuse together rather than wait for rank 0.)
        check_space_for_weights(out, loaded.model, head_of(loaded.model, hooks),
                                 resume=resume)
        task = recipe.prepare(data, loaded, DataOptions(
            val_data=val_data, val_fraction=val_fraction, limit=limit, val_limit=val_limit,
            max_length=max_length, text_column=text_column, label_column=label_column,
            seed=seed))
        extra_kwargs: dict[str, Any] = dict(task.notes.get("kwargs", {}))
        bundled: dict[str, str] = {}        # builder arguments that are files of `out`
        if "vocab" in task.notes:
            # A vocabulary learned from this data: the model is rebuilt to its size, and
            # the saved config points at the vocabulary file.
            vocab_path = (out / "vocab.json").resolve()
            out.mkdir(parents=True, exist_ok=True)
            task.notes["vocab"].save(vocab_path)
            kw = {k: v for k, v in loaded.kwargs.items() if k != "vocab_size"}
            kw["vocab"] = str(vocab_path)
            bundled["vocab"] = vocab_path.name  # so the folder loads after a move too
            torch.manual_seed(seed)
            loaded.model = rebuild(loaded, kw, keep_weights=False, head=None)
            loaded.kwargs = kw
        net, kwargs, replaced = fit_head(loaded, hooks, len(task.labels), num_classes,
                                          task.labels)
        kwargs = {**kwargs, **extra_kwargs}
        if dropout is not None:
            set_dropout(net, dropout)
        head = head_of(net, hooks)
        if head and not hooks.get("head"):
            hooks = {**hooks, "head": head}
        # the catalog's groups as this model names them (per block for transformers)
        layer_groups = resolve_layer_groups(net, hooks.get("layer_groups", ()),
                                            split_blocks=spec.family == "transformer")
        warning = defaults.untrained_warning(technique, ref=loaded.ref, trained=loaded.trained)
        if warning and dist.main:
            print(warning, file=sys.stderr)
        info: dict[str, Any] = {"technique": technique}
        train_model, kind, task_for_train = net, task.kind, task
        teacher_model = teacher_task = None
        if technique == "freeze":
            frozen = freeze(net, groups=freeze_groups, layer_groups=layer_groups,
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
            if cache_features and task.kind != "recipe":
                t0 = time.perf_counter()
                cached = precompute_features(net, head, task)
                if cached is not None:
                    info["feature_cache_seconds"] = round(time.perf_counter() - t0, 3)
                    from zoo.finetune.techniques import get_module

                    train_model, kind, task_for_train = get_module(net, head), "features", cached
        elif technique == "lora":
            from zoo.finetune.lora import apply_lora

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
            from zoo.loading.preprocess import model_input

            if model_input(tl.spec, tl.tag) != model_input(spec, loaded.tag) or \
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
                from zoo.finetune.loop import forward

                probe = forward(teacher_model, teacher_task.kind,
                                teacher_task.train.take([0]).inputs, teacher_task.graph)
            if probe.shape[-1] != len(task.labels):
                raise UsageError(f"teacher '{teacher}' has {probe.shape[-1]} classes but the "
                                 f"data has {len(task.labels)}; fine-tune the teacher first")
        trainable, total = count_params(train_model if technique == "lora" else net)
        settings = defaults.choose(
            technique=technique, family=spec.family, params=total, trained=loaded.trained,
            samples=len(task_for_train.train), epochs=epochs, batch_size=batch_size, lr=lr,
            cached_head=kind == "features")
        epochs, batch_size, lr = settings.epochs, settings.batch_size, settings.lr
        if progress and dist.main:
            print(settings.describe(samples=len(task_for_train.train), technique=technique),
                  file=sys.stderr)
        train_model.to(device)
        if teacher_model is not None:
            teacher_model.to(device)
        task_for_train = task_for_train.to(device)
        estimate = estimate_outputs(
            net, train_model=train_model, optimizer=optimizer,
            early_stopping=early_stopping is not None, epochs=epochs,
            labels=len(task.labels), lora=technique == "lora")
        check_run_space(out, estimate, resume=resume, technique=technique)
        no_decay = list(hooks.get("no_decay") or DEFAULT_NO_DECAY)
        groups = param_groups(train_model, lr=lr, weight_decay=weight_decay,
                              layer_groups=layer_groups if kind != "features"
                              else (), layer_decay=layer_decay, group_lrs=group_lrs,
                              no_decay=no_decay)
        opt = make_optimizer(groups, optimizer, lr=lr)
        steps = epochs * math.ceil(len(task_for_train.train) / batch_size)
        sched = make_schedule(opt, steps, warmup=warmup, kind=schedule)
        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                          label_smoothing=label_smoothing, early_stopping=early_stopping,
                          metric=metric, clip_grad=clip_grad, temperature=temperature,
                          alpha=alpha)
        # Not the number of processes: the global batch makes the updates the same on any
        # number, so a run resumes on another (the loop says so when it does).
        fingerprint = {"model": os.fspath(model), "data": os.fspath(data),
                       "technique": technique, "epochs": epochs, "batch_size": batch_size,
                       "lr": lr, "seed": seed, "limit": limit, "num_classes": num_classes}
        if dist.main:
            report.preload()
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
                from zoo.finetune.lora import ADAPTER_DIR, merge, save_adapter

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
                save_model(final_model, out, spec=spec, tag=loaded.tag, kwargs=kwargs,
                            extra={"labels": task.labels, "metrics": final_metrics,
                                   **saved_facts(spec, task, val_data=val_data,
                                                 val_fraction=val_fraction,
                                                 max_length=max_length),
                                   "technique": technique, "base_model": os.fspath(model),
                                   "dataset": task.name,
                                   "finetune": {k: v for k, v in info.items()
                                                if k != "technique"},
                                   **({"files": bundled} if bundled else {})})
            with writing(out / report.METRICS_FILE, kept=kept):
                report.write_metrics(out, {
                    "model": os.fspath(model), "data": task.name, "labels": task.labels,
                    "train_samples": len(task.train),
                    "val_samples": len(task.val) if task.val is not None else 0,
                    "final": final_metrics, "metrics_split": "validation",
                    "epochs": history, **info,
                    "config": {**run["config"], "chosen": settings.chosen}})
            with writing(out / report.CURVE_FILE, kept=kept):
                report.plot_curves(out, history, f"{spec.name} on {task.name} ({technique})")
        if dist.world > 1:
            import torch.distributed as tdist

            tdist.barrier()
        return Result(out, final_metrics, history, trainable, total, model=final_model,
                      extra={**info, "output_bytes": estimate.as_dict()})


