"""The recipe contract, and the run every recipe of a non-classification task shares.

A :class:`Recipe` says how one task trains: how ``--data`` becomes tensors
(:meth:`Recipe.prepare`), what the loss of a batch is (:meth:`Recipe.loss_sum`) and how a
validation split is scored (:meth:`Recipe.evaluate`). :meth:`Recipe.run` does the rest
with zoo's machinery: the training loop (:mod:`zoo.finetune.loop`: seeded batches,
checkpoints, ``--resume``, NaN guard, data parallelism, early stopping on
:attr:`Recipe.metric`), AdamW with warmup, and the output directory ``zoo get OUT``
rebuilds (``model.safetensors``, ``config.json``, ``metrics.json``, ``curve.png``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import UsageError


@dataclass(frozen=True)
class DataOptions:
    """The ``finetune`` options about data that :meth:`Recipe.prepare` may use."""

    val_data: str | None = None       # a separate validation set (else: val_fraction)
    val_fraction: float = 0.2
    limit: int | None = None          # at most this many training samples
    val_limit: int | None = None      # at most this many validation samples
    max_length: int = 64              # text: tokens per sample
    text_column: str = "text"
    label_column: str = "label"
    seed: int = 0


class Recipe:
    """How one task fine-tunes a model: its data, its loss, its metrics.

    Subclass it, set the class attributes and implement :meth:`prepare`,
    :meth:`loss_sum` and :meth:`evaluate`; a task adapter names the subclass
    (``recipe = "my_plugin.recipe:MyRecipe"``), and ``zoo finetune`` instantiates it
    without arguments. Samples travel as tensors whose first dimension is the sample
    (:class:`zoo.finetune.data.Split`); the loop shuffles, batches and shards indices.
    """

    #: the task this recipe trains (for messages)
    task: str = ""
    #: True: zoo's classification run trains it (new heads, LoRA, distillation...), and
    #: only :meth:`prepare` (and :meth:`loss_sum` / :meth:`evaluate` for data of kind
    #: ``"recipe"``) are this recipe's. False: :meth:`run` below trains it.
    classifier: bool = False
    #: the validation metric that picks the best epoch (``--early-stopping``, ``final``)
    metric: str = "loss"
    #: every metric :meth:`evaluate` reports -> ``"max"`` or ``"min"`` (which is better)
    modes: Mapping[str, str] = {"loss": "min"}
    #: the ``--technique`` values this recipe supports
    techniques: Sequence[str] = ("full", "freeze")
    #: default peak learning rate (``--lr`` overrides it)
    lr: float = 1e-3
    #: default epochs and batch size (``--epochs`` / ``--batch-size`` override them)
    epochs: int = 3
    batch_size: int = 32
    #: values set on every optimiser param group that has the key (e.g. Adam's betas)
    optimizer_options: Mapping[str, Any] = {}
    #: what ``--data`` takes, one line (messages and docs)
    data_help: str = ""

    # -- what a recipe implements ---------------------------------------------------------

    def prepare(self, data: str | os.PathLike[str], loaded: Any, options: DataOptions):
        """Read ``data`` into a :class:`zoo.finetune.data.TaskData` (use :meth:`task_data`).

        ``loaded`` is a :class:`zoo.finetune.model.Loaded`: ``.model``, ``.spec``,
        ``.tag``, ``.kwargs``, ``.labels``, ``.trained``. Raise ``UsageError`` with one
        line saying what is wrong with the data and what to give instead.
        """
        raise NotImplementedError

    def setup(self, loaded: Any, data: Any, out: Path) -> tuple[Any, dict[str, Any]]:
        """The model to train and the builder kwargs to save with it (default: as
        loaded). Rebuild here when the data needs another shape (class count, vocabulary);
        files the rebuilt model needs (a vocabulary) go into the output directory ``out``."""
        return loaded.model, dict(loaded.kwargs)

    def loss_sum(self, model: Any, batch: Any):
        """The sum over the batch's samples of each sample's loss (a scalar tensor).

        The loop divides by the global batch size, so sums from several processes add
        up to the one-process mean. ``batch`` is a :class:`~zoo.finetune.data.Split`.
        """
        raise NotImplementedError

    def evaluate(self, model: Any, data: Any, split: Any) -> dict[str, float]:
        """Metrics of ``model`` on ``split``: ``{"loss": ..., other metrics}`` (keys of
        :attr:`modes`). Runs in eval mode under ``torch.no_grad``."""
        raise NotImplementedError

    def config(self, data: Any) -> dict[str, Any]:
        """Extra keys for the saved ``config.json`` (e.g. ``{"labels": [...]}``)."""
        return {"labels": list(data.labels)} if data.labels else {}

    # -- helpers for recipes ---------------------------------------------------------------

    def task_data(self, train: Any, val: Any = None, *, labels: Sequence[str] = (),
                  name: str = "", notes: Mapping[str, Any] | None = None):
        """A TaskData of kind ``"recipe"``: the loop asks this recipe for loss and metrics."""
        from zoo.finetune.data import TaskData

        return TaskData("recipe", train, val, list(labels), name=name,
                        notes={**(notes or {}), "recipe": self})

    @staticmethod
    def split(inputs: Mapping[str, Any], y: Any = None):
        """A :class:`~zoo.finetune.data.Split` of named tensors (first dimension: sample);
        ``y`` defaults to the sample indices (for recipes without per-sample targets)."""
        import torch

        from zoo.finetune.data import Split

        first = next(iter(inputs.values()))
        return Split(dict(inputs), torch.arange(len(first)) if y is None else y)

    # -- the run ----------------------------------------------------------------------------

    def run(self, model: str | os.PathLike[str], data: str | os.PathLike[str], *, out,
            technique: str = "full", epochs: int | None = None, lr: float | None = None,
            batch_size: int | None = None, seed: int = 0, val_data=None, val_fraction: float = 0.2,
            limit: int | None = None, val_limit: int | None = None, freeze_groups: int = 0,
            freeze_patterns: Sequence[str] = (), weight_decay: float = 0.01,
            optimizer: str = "adamw", schedule: str = "linear", warmup: float = 0.1,
            clip_grad: float | None = 1.0, early_stopping: int | None = None,
            metric: str | None = None, max_length: int = 64, text_column: str = "text",
            label_column: str = "label", resume: bool = False, overwrite: bool = False,
            device: str = "cpu", progress: bool = True, on_step=None, **_other: Any):
        """Train ``model`` on ``data`` into ``out``; what :func:`zoo.finetune.finetune`
        does for this recipe's task (its arguments, same outputs and Result)."""
        import torch

        from zoo.api import finetune_hooks
        from zoo.finetune import report
        from zoo.finetune.distributed import init_distributed
        from zoo.finetune.loop import CHECKPOINT, TrainConfig, evaluate, train
        from zoo.finetune.model import load_model
        from zoo.finetune.optim import (
            DEFAULT_NO_DECAY,
            make_optimizer,
            make_schedule,
            param_groups,
        )
        from zoo.finetune.outputs import estimate_outputs, writing
        from zoo.finetune.run import (
            Result,
            check_run_space,
            remove_leftovers,
            run_scope,
            save_model,
        )
        from zoo.finetune.techniques import count_params, freeze

        label = technique
        technique = "full" if technique == "sft" else technique
        # left out (None): this recipe's own defaults (zoo.finetune.defaults is for classifiers)
        epochs = self.epochs if epochs is None else epochs
        batch_size = self.batch_size if batch_size is None else batch_size
        self.check(technique=technique, metric=metric)
        metric = metric or self.metric
        out = Path(out)
        dist, started = init_distributed(device)
        if device.startswith("cuda") and dist.world > 1:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', dist.rank))}"
        with run_scope(out, started=started):
            if (out / CHECKPOINT).exists() and not (resume or overwrite):
                raise UsageError(f"{out}: holds a checkpoint of an earlier run; pass --resume "
                                 "to continue it, or choose another --out")
            if dist.main:
                out.mkdir(parents=True, exist_ok=True)
                remove_leftovers(out)
            torch.manual_seed(seed)
            loaded = load_model(model)
            options = DataOptions(val_data=os.fspath(val_data) if val_data else None,
                                  val_fraction=val_fraction, limit=limit, val_limit=val_limit,
                                  max_length=max_length, text_column=text_column,
                                  label_column=label_column, seed=seed)
            task = self.prepare(data, loaded, options)
            if len(task.train) == 0:
                raise UsageError(f"data '{data}': no training samples; give more data")
            torch.manual_seed(seed)
            net, kwargs = self.setup(loaded, task, out)
            hooks = finetune_hooks(loaded.spec)
            info: dict[str, Any] = {"technique": label, "task": self.task}
            if technique == "freeze":
                frozen = freeze(net, groups=freeze_groups,
                                layer_groups=hooks.get("layer_groups", ()),
                                patterns=freeze_patterns)
                if not frozen:
                    raise UsageError("--technique freeze needs --freeze N (layer groups) or "
                                     "--freeze-pattern PATTERN")
                info["frozen"] = len(frozen)
            net.to(device)
            task = task.to(device)
            if dist.world > 1:
                import torch.distributed as tdist

                for t in net.state_dict().values():
                    tdist.broadcast(t, 0)
            estimate = estimate_outputs(net, optimizer=optimizer, epochs=epochs,
                                        labels=len(task.labels))
            check_run_space(out, estimate, resume=resume, technique=technique)
            lr = self.lr if lr is None else lr
            groups = param_groups(net, lr=lr, weight_decay=weight_decay,
                                  layer_groups=hooks.get("layer_groups", ()),
                                  no_decay=list(hooks.get("no_decay") or DEFAULT_NO_DECAY))
            opt = make_optimizer(groups, optimizer, lr=lr)
            for group in opt.param_groups:
                group.update({k: v for k, v in self.optimizer_options.items() if k in group})
            sched = make_schedule(opt, epochs * math.ceil(len(task.train) / batch_size),
                                  warmup=warmup, kind=schedule)
            cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                              early_stopping=early_stopping, metric=metric, clip_grad=clip_grad)
            if task.val is not None and len(task.val) and not resume:
                # the untrained score, so that a run shows which way its metric moved
                torch.manual_seed(seed)
                info["initial"] = self._named(evaluate(net, task, task.val, kind="recipe"))
            fingerprint = {"model": os.fspath(model), "data": os.fspath(data),
                           "technique": label, "epochs": epochs, "batch_size": batch_size,
                           "lr": lr, "seed": seed, "limit": limit}
            torch.manual_seed(seed)
            bar = report.Progress(enabled=progress and dist.main)
            try:
                done = train(net, task, cfg, optimizer=opt, scheduler=sched, out=out,
                             kind="recipe", resume=resume, fingerprint=fingerprint, dist=dist,
                             progress=bar, on_step=on_step)
            finally:
                bar.close()
            history = done["history"]
            last = history[done["best_epoch"] - 1] if done["best_epoch"] and \
                early_stopping is not None else history[-1]
            final = {k: last[k] for k in self._named(dict.fromkeys(self.modes)) if k in last}
            trainable, total = count_params(net)
            info.update(trainable_params=trainable, total_params=total,
                        trainable_percent=round(100.0 * trainable / max(total, 1), 4),
                        best_epoch=done["best_epoch"], stopped_early=done["stopped_early"],
                        world_size=dist.world)
            if dist.main:
                net.to("cpu")
                kept = f"{out / CHECKPOINT} holds the last epoch ({history[-1]['epoch']})"
                with writing(out / "model.safetensors", kept=kept):
                    save_model(net, out, spec=loaded.spec, tag=loaded.tag, kwargs=kwargs,
                               extra={**self.config(task), "metrics": final,
                                      "technique": label, "base_model": os.fspath(model),
                                      "dataset": task.name,
                                      "finetune": {k: v for k, v in info.items()
                                                   if k != "technique"}})
                with writing(out / report.METRICS_FILE, kept=kept):
                    report.write_metrics(out, {
                        "model": os.fspath(model), "data": task.name,
                        "labels": list(task.labels), "train_samples": len(task.train),
                        "val_samples": len(task.val) if task.val is not None else 0,
                        "metric": metric, "final": final, "epochs": history, **info,
                        "config": done["config"]})
                with writing(out / report.CURVE_FILE, kept=kept):
                    report.plot_curves(out, history,
                                       f"{loaded.spec.name} on {task.name} ({label})")
            if dist.world > 1:
                import torch.distributed as tdist

                tdist.barrier()
            return Result(out, final, history, trainable, total, model=net,
                          extra={**info, "output_bytes": estimate.as_dict()})

    def check(self, *, technique: str, metric: str | None) -> None:
        """Refuse a technique or metric this recipe does not support (one line each)."""
        if technique not in self.techniques:
            raise UsageError(f"--technique {technique} is not available for {self.task} "
                             f"models; use {' or '.join(self.techniques)}")
        if metric is not None and metric not in self.modes:
            raise UsageError(f"unknown --metric '{metric}' for {self.task}; use one of "
                             + ", ".join(self.modes))

    @staticmethod
    def _named(metrics: Mapping[str, Any]) -> dict[str, Any]:
        """Metric names as the history records them (the validation loss is ``val_loss``)."""
        return {("val_loss" if k == "loss" else k): v for k, v in metrics.items()}
