"""The training loop: seeded batches, optional data parallelism, checkpoints, resume, early
stopping, NaN guard and per-epoch metrics.

Reproducibility: epoch ``e`` visits the samples in ``randperm(seed, e)`` order, whatever
happened before, and the torch RNG state (dropout) is saved in every checkpoint, so a
run resumed from the checkpoint of epoch ``e`` continues exactly like the uninterrupted
run (same seed, same final metrics).

Data parallelism: the model is wrapped in torch's ``DistributedDataParallel`` (the
process group comes from torchrun, SLURM or ``--nproc``). Every process walks the same
global batches and takes every ``world``-th sample of each; each process's loss is
``world * sum of its losses / global batch size``, which DDP's gradient *average* turns
into the single-process gradient of the same global batch (up to float rounding). So a
checkpoint does not depend on the number of processes, and a run resumes on another.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from zoo.errors import ZooError
from zoo.finetune.data import Split, TaskData
from zoo.finetune.outputs import TrainingInterrupted, atomic_write, writing
from zoo.finetune.techniques import frozen_modules_eval

CHECKPOINT = "checkpoints/last.pt"
METRIC_MODES = {"accuracy": "max", "macro_f1": "max", "loss": "min"}


class TrainingDiverged(ZooError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """Everything that decides how the weights move (recorded in metrics.json)."""

    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    label_smoothing: float = 0.0
    early_stopping: int | None = None     # patience in epochs; None: train every epoch
    metric: str = "accuracy"              # validation metric for early stopping
    clip_grad: float | None = 1.0
    eval_batch_size: int = 64             # length-sorted chunks (see eval_chunks)
    temperature: float = 4.0              # distillation
    alpha: float = 0.7                    # distillation: weight of the soft targets
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dist:
    """This process's place in a torch.distributed job (rank 0 of 1 when alone)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


# -- forward, metrics ------------------------------------------------------------------------

def _trim(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop padding columns no sample in the batch uses (tweets are much shorter than 64)."""
    mask = inputs.get("attention_mask")
    if mask is not None and mask.dim() == 2 and mask.shape[0]:
        width = max(int(mask.sum(1).max()), 1)
        return {k: (v[:, :width] if v.dim() == 2 else v) for k, v in inputs.items()}
    if "lengths" in inputs and inputs["lengths"].numel():
        width = max(int(inputs["lengths"].max()), 1)
        return {**inputs, "ids": inputs["ids"][:, :width]}
    return inputs


def logits_of(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits"):
        return out.logits
    if isinstance(out, tuple | list):
        return out[0]
    raise TypeError(f"cannot find logits in a {type(out).__name__}")


def forward(model, kind: str, inputs: dict[str, torch.Tensor],
            graph: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Logits of ``model`` for one batch of ``kind`` (see :class:`TaskData`)."""
    if kind == "image":
        return logits_of(model(inputs["x"]))
    if kind == "features":
        return logits_of(model(inputs["features"]))
    if kind == "ids":
        inputs = _trim(inputs)
        return logits_of(model(inputs["ids"], inputs["lengths"]))
    if kind in ("text", "lm"):
        return logits_of(model(**_trim(inputs)))
    if kind == "node":
        return logits_of(model(graph["x"], graph["edge_index"]))[inputs["node"]]
    raise ValueError(f"unknown data kind {kind!r}")


def macro_f1(pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """Mean F1 over the classes present in the labels or the predictions (as sklearn)."""
    f1s = []
    for c in range(num_classes):
        tp = int(((pred == c) & (y == c)).sum())
        fp = int(((pred == c) & (y != c)).sum())
        fn = int(((pred != c) & (y == c)).sum())
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s) if f1s else 0.0


def eval_chunks(split: Split, batch_size: int) -> list[torch.Tensor]:
    """Index chunks for a pass over ``split`` where order does not matter (validation,
    feature caching): texts sorted by length, so that each chunk pads to its own longest
    text, not to the longest of a random mix. MiniLM on 600 tweets, 1 thread: 10.0 s of
    CPU in unsorted chunks of 64, 6.5 s sorted (9.1 s sorted in chunks of 256)."""
    inputs = split.inputs
    mask = inputs.get("attention_mask")
    lengths = mask.sum(1) if mask is not None and mask.dim() == 2 else inputs.get("lengths")
    order = (torch.argsort(lengths, stable=True) if lengths is not None and lengths.dim() == 1
             else torch.arange(len(split)))
    return [order[i:i + batch_size] for i in range(0, len(split), batch_size)]


@torch.no_grad()
def evaluate(model, data: TaskData, split: Split, *, kind: str | None = None,
             batch_size: int = 64) -> dict[str, float]:
    """Loss, accuracy and macro-F1 of ``model`` on ``split`` (eval mode, then restored)."""
    was = model.training
    model.eval()
    kind = kind or data.kind
    if kind == "recipe":    # a task's recipe scores its own data (zoo.finetune.recipes)
        try:
            return data.notes["recipe"].evaluate(model, data, split)
        finally:
            model.train(was)
    if kind == "lm":
        from zoo.finetune.lm import lm_metrics

        total = correct = count = 0
        for i in range(0, len(split), batch_size):
            part = split.take(range(i, min(i + batch_size, len(split))))
            loss, ok, n = lm_metrics(forward(model, kind, part.inputs), part.y)
            total, correct, count = total + loss, correct + ok, count + n
        model.train(was)
        return {"loss": total / max(count, 1), "accuracy": correct / max(count, 1)}
    preds, ys, losses = [], [], 0.0
    for chunk in eval_chunks(split, batch_size):
        part = split.take(chunk)
        logits = forward(model, kind, part.inputs, data.graph)
        losses += float(F.cross_entropy(logits, part.y, reduction="sum"))
        preds.append(logits.argmax(-1))
        ys.append(part.y)
    model.train(was)
    pred = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)
    y = torch.cat(ys) if ys else torch.empty(0, dtype=torch.long)
    n = max(len(split), 1)
    return {"loss": losses / n, "accuracy": float((pred == y).float().mean()) if len(split)
            else 0.0, "macro_f1": macro_f1(pred, y, len(data.labels))}


# -- checkpoints -----------------------------------------------------------------------------

def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically (temp file in the same directory, fsync, rename): a kill, Ctrl-C
    or full disk mid-write leaves the previous checkpoint intact and no partial file.

    Raises:
        OSError: the write failed (ENOSPC, EFBIG...); the previous checkpoint is intact.
    """
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, checked (see :mod:`zoo.finetune.resume`)."""
    from zoo.finetune.resume import read_checkpoint

    return read_checkpoint(path)


def interrupted_message(ckpt_path: Path | None, epoch: int, saved: int | None) -> str:
    """What Ctrl-C in ``epoch`` leaves and how to continue (one line)."""
    if ckpt_path is None:
        return f"interrupted in epoch {epoch}; no output directory, nothing was saved"
    if not saved and ckpt_path.is_file():
        # Ctrl-C between the checkpoint's rename into place and the loop noting it: the file
        # is whole (written atomically), so say what it holds.
        try:
            saved = int(load_checkpoint(ckpt_path)["epoch"])
        except Exception:
            saved = None
    if not saved:
        return (f"interrupted in epoch {epoch}, before the first checkpoint; nothing to "
                "resume: rerun the same command to start over")
    return (f"interrupted in epoch {epoch}; {ckpt_path} holds epoch {saved}: rerun the same "
            "command with --resume to continue from it")


# -- the loop ----------------------------------------------------------------------------------

def _batch_loss(model, data: TaskData, kind: str, batch: Split, cfg: TrainConfig,
                teacher_logits: torch.Tensor | None) -> torch.Tensor:
    """Sum of per-sample losses of ``batch`` (the caller divides by the global batch)."""
    if len(batch) == 0:  # a process with no sample this step still joins the all_reduce
        return sum(p.sum() * 0.0 for p in model.parameters() if p.requires_grad)
    if kind == "recipe":
        return data.notes["recipe"].loss_sum(model, batch)
    logits = forward(model, kind, batch.inputs, data.graph)
    if kind == "lm":
        from zoo.finetune.lm import lm_loss_sum

        return lm_loss_sum(logits, batch.y)
    if teacher_logits is not None:
        from zoo.finetune.distill import distill_loss

        return distill_loss(logits, teacher_logits, batch.y, temperature=cfg.temperature,
                            alpha=cfg.alpha, label_smoothing=cfg.label_smoothing,
                            reduction="sum")
    return F.cross_entropy(logits, batch.y, label_smoothing=cfg.label_smoothing,
                           reduction="sum")


def train(model, data: TaskData, cfg: TrainConfig, *, optimizer, scheduler, out: Path | None,
          kind: str | None = None, teacher=None, teacher_kind: str | None = None,
          teacher_data: TaskData | None = None, resume: bool = False,
          fingerprint: dict[str, Any] | None = None, dist: Dist | None = None,
          progress=None, on_step: Callable[..., None] | None = None,
          loss_fn: Callable[..., torch.Tensor] | None = None,
          eval_fn: Callable[..., dict[str, float]] | None = None) -> dict[str, Any]:
    """Train ``model`` for ``cfg.epochs`` epochs; checkpoint after each; return the history.

    Returns ``{"history": [per-epoch dicts], "best_epoch": int, "stopped_early": bool}``;
    the model ends with the best epoch's weights when early stopping is on.

    A task with its own loss and metric (a recipe) passes ``loss_fn(model, batch, data)``,
    the *sum* of the batch's per-sample losses (``model`` is what to call: the DDP wrapper
    in a distributed run), and ``eval_fn(model, data, split)``, a dict with ``loss`` and
    any metrics (``accuracy``, ``macro_f1``... are recorded under their names). Batching,
    sharding across processes, checkpoints, resume and early stopping stay the loop's.

    Raises:
        TrainingDiverged: NaN/inf loss (the previous epoch's checkpoint is kept).
    """
    dist = dist or Dist()
    kind = kind or data.kind
    ckpt_path = out / CHECKPOINT if out is not None else None
    history: list[dict[str, Any]] = []
    start = 1
    mode = getattr(data.notes.get("recipe"), "modes", METRIC_MODES).get(cfg.metric)
    if mode is None:
        raise ValueError(f"unknown metric {cfg.metric!r}")
    best: dict[str, Any] = {"epoch": 0, "value": None, "state": None, "bad": 0}
    saved: int | None = None   # the epoch whose checkpoint is on disk, for messages
    if resume and ckpt_path is not None and ckpt_path.is_file():
        ck = load_checkpoint(ckpt_path)
        # (older checkpoints also noted the number of processes, which no longer matters)
        theirs = {k: v for k, v in (ck.get("fingerprint") or {}).items() if k != "world"}
        if fingerprint is not None and theirs != fingerprint:
            from zoo.errors import UsageError

            diff = sorted(k for k in {*fingerprint, *theirs}
                          if theirs.get(k) != fingerprint.get(k))
            raise UsageError(f"{ckpt_path}: was written with other settings ({', '.join(diff)}); "
                             "resume with the same options, or drop --resume to start over")
        from zoo.finetune.resume import restore

        restore(ckpt_path, ck, model=model, optimizer=optimizer, scheduler=scheduler)
        history = list(ck["history"])
        best = dict(ck["best"])
        saved = int(ck["epoch"])
        start = saved + 1
        was = int(ck.get("world", dist.world))
        if was != dist.world and dist.main:
            import sys

            print(f"resuming a run of {was} process{'es' if was != 1 else ''} on "
                  f"{dist.world}: the global batch ({cfg.batch_size}) is unchanged, so the "
                  "updates continue as before", file=sys.stderr)
    n = len(data.train)
    steps = math.ceil(n / cfg.batch_size)
    stopped = False
    net = data_parallel(model, dist)
    if best["bad"] and cfg.early_stopping is not None and best["bad"] >= cfg.early_stopping:
        start = cfg.epochs + 1   # the interrupted run had already decided to stop
        stopped = True
    epoch = start
    try:
        for epoch in range(start, cfg.epochs + 1):
            net.train()
            frozen_modules_eval(model)
            order = torch.randperm(n, generator=torch.Generator().manual_seed(
                cfg.seed * 100_003 + epoch))
            t0, seen, total_loss = time.perf_counter(), 0, 0.0
            if progress is not None:
                progress.start_epoch(epoch, cfg.epochs, steps)
            for step in range(steps):
                idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
                local, weight = idx[dist.rank::dist.world], 1.0
                if not len(local):
                    # fewer samples than processes: this one still joins DDP's gradient
                    # average, with a sample that counts for nothing
                    local, weight = idx[:1], 0.0
                batch = data.train.take(local)
                t_logits = None
                if teacher is not None:
                    tb = (teacher_data or data).train.take(local)
                    with torch.no_grad():
                        t_logits = forward(teacher, teacher_kind or kind, tb.inputs,
                                           (teacher_data or data).graph)
                loss_sum = loss_fn(net, batch, data) if loss_fn is not None else \
                    _batch_loss(net, data, kind, batch, cfg, t_logits)
                if weight != 1.0:
                    loss_sum = loss_sum * weight
                optimizer.zero_grad(set_to_none=True)
                (loss_sum * (dist.world / len(idx))).backward()
                reported = loss_sum.detach()
                if dist.world > 1:
                    reported = reported.clone()
                    torch.distributed.all_reduce(reported)
                value = float(reported) / len(idx)
                if not math.isfinite(value):
                    kept = (f"kept the last good checkpoint {ckpt_path} (epoch {epoch - 1})"
                            if ckpt_path is not None and ckpt_path.is_file()
                            else "no checkpoint was written yet")
                    raise TrainingDiverged(
                        f"loss became {value} at epoch {epoch} step {step + 1}; {kept}. Lower "
                        "--lr, raise --warmup or use --clip-grad, then --resume")
                if cfg.clip_grad:
                    torch.nn.utils.clip_grad_norm_(
                        [p for p in model.parameters() if p.requires_grad], cfg.clip_grad)
                optimizer.step()
                scheduler.step()
                seen += len(idx)
                total_loss += value * len(idx)
                if progress is not None:
                    progress.step(loss=value, samples=len(idx))
                if on_step is not None:
                    on_step(epoch=epoch, step=step + 1, model=model)
            elapsed = time.perf_counter() - t0
            record: dict[str, Any] = {"epoch": epoch, "train_loss": total_loss / max(seen, 1),
                                      "lr": optimizer.param_groups[-1]["lr"],
                                      "seconds": round(elapsed, 3),
                                      "samples_per_s": round(seen / max(elapsed, 1e-9), 1)}
            if data.val is not None and len(data.val):
                if eval_fn is not None:
                    was = model.training
                    model.eval()
                    with torch.no_grad():
                        val = dict(eval_fn(model, data, data.val))
                    model.train(was)
                else:
                    val = evaluate(model, data, data.val, kind=kind,
                                   batch_size=cfg.eval_batch_size)
                record["val_loss"] = val.pop("loss", float("nan"))
                record.update(val)
            history.append(record)
            value = record.get("val_loss" if cfg.metric == "loss" else cfg.metric)
            if value is not None:
                better = best["value"] is None or (value > best["value"] if mode == "max"
                                                   else value < best["value"])
                if better:
                    best.update(epoch=epoch, value=value, bad=0)
                    if cfg.early_stopping is not None:
                        best["state"] = {k: v.detach().clone()
                                         for k, v in model.state_dict().items()}
                else:
                    best["bad"] += 1
            if progress is not None:
                progress.end_epoch(record)
            if ckpt_path is not None and dist.main:
                kept = (f"{ckpt_path} still holds epoch {saved}" if saved
                        else "no checkpoint was written yet")
                with writing(ckpt_path, kept=kept):
                    save_checkpoint(ckpt_path, {
                        "epoch": epoch, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "rng": torch.get_rng_state(), "history": history, "best": best,
                        "fingerprint": fingerprint or {}, "world": dist.world})
                saved = epoch
            if dist.world > 1:
                torch.distributed.barrier()
            if cfg.early_stopping is not None and best["bad"] >= cfg.early_stopping:
                stopped = True
                break
    except KeyboardInterrupt:
        raise TrainingInterrupted(interrupted_message(ckpt_path, epoch, saved)) from None
    if cfg.early_stopping is not None and best.get("state") is not None:
        model.load_state_dict(best["state"])
    return {"history": history, "best_epoch": best["epoch"], "stopped_early": stopped,
            "config": asdict(cfg)}


def data_parallel(model, dist: Dist):
    """``model`` itself alone, else wrapped in ``DistributedDataParallel``, which
    broadcasts rank 0's weights and averages gradients during ``backward``.

    ``static_graph``: the same parameters take part in every step (frozen ones are not
    registered at all), so DDP finds any unused ones (a pooler no head reads) in the
    first step instead of searching the graph on every step.
    """
    if dist.world <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, static_graph=True)
