"""The output side of a fine-tuning run: its directory, disk-space checks, the saved model,
clean-up after failures, and the :class:`Result` it returns (finetune and finetune_sft
share all of it)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import UsageError


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


def check_out(out: Path) -> None:
    """Fail before training if the output directory cannot be created or written.

    Missing parent directories are created (as ``mkdir -p``). Directories made for the
    check are removed again, so a run refused later (bad data, say) leaves nothing behind.
    """
    from zoo.finetune.outputs import nearest_existing

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


@contextlib.contextmanager
def run_scope(out: Path, *, started: bool):
    """Around one run into ``out`` (finetune and finetune_sft share it).

    A run that fails removes the directories it created that are still empty (bad data,
    too little space: nothing written yet); Ctrl-C outside the training loop, which words
    its own message, becomes a :class:`TrainingInterrupted` saying whether ``--resume``
    can continue; and the process group this process ``started`` is destroyed however
    the run ends.
    """
    from zoo.finetune.loop import CHECKPOINT
    from zoo.finetune.outputs import TrainingInterrupted

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


def save_model(model, out: Path, *, spec, tag, kwargs, extra) -> None:
    """zoo.loading.build.save into a scratch folder, then move its two files into ``out`` (save
    replaces its whole target directory, which would drop checkpoints and metrics).

    Each file arrives by rename, so ``out`` never holds half a file; a failure (a full
    disk) removes the scratch folder.
    """
    from zoo.loading import build

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

#: what a classifier fine-tuned on data of each kind does (its saved task)
TRAINED_TASKS = {"image": "image-classification", "text": "text-classification",
                 "ids": "text-classification", "node": "node-classification"}


def saved_facts(spec, task, *, val_data, val_fraction: float,
                max_length: int | None = None) -> dict[str, Any]:
    """What config.json says about a fine-tuned classifier beyond its weights: its task
    (a classifier made from an encoder is no longer feature extraction), the input spec
    its images were preprocessed with (the one ``zoo.predict`` and demos apply), and
    which split its metrics were measured on."""
    from dataclasses import asdict

    facts: dict[str, Any] = {}
    trained = TRAINED_TASKS.get(task.kind)
    if trained:
        facts["task"] = trained
        if spec.demo_task != trained:
            facts["demo"] = trained
    if task.notes.get("input") is not None:
        facts["input"] = asdict(task.notes["input"])
    elif task.kind == "text" and max_length:
        # texts were cut at max_length tokens in training: served the same way
        inp = spec.input
        facts["input"] = {**(asdict(inp) if inp is not None else {"dtype": "int64"}),
                          "size": [int(max_length)]}
    source = (f"--val-data {os.fspath(val_data)}" if val_data is not None
              else "the sentiment set's fixed 10% (seed 0)" if task.name == "sentiment"
              else "the graph's fixed validation nodes" if task.kind == "node"
              else f"a stratified {val_fraction:.0%} of the data held out (seed 0)")
    facts["metrics_split"] = "validation"
    facts["evaluation"] = {"split": "validation",
                           "samples": len(task.val) if task.val is not None else 0,
                           "source": source}
    return facts


def remove_leftovers(out: Path) -> None:
    """Remove what a killed run left half-written: temp files and scratch folders."""
    from zoo.finetune.loop import CHECKPOINT
    from zoo.finetune.lora import ADAPTER_DIR
    from zoo.finetune.outputs import remove_stale_temps

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
    from zoo.finetune.loop import CHECKPOINT

    ckpt = out / CHECKPOINT
    if ckpt.is_file():
        return (f"interrupted; {ckpt} is intact: rerun the same command with --resume to "
                "continue from it")
    return "interrupted before the first checkpoint; nothing to resume: rerun the command"


# What a run writes into --out, besides its checkpoint: a folder holding any of them
# already is an earlier run or a user's model, replaced only with --overwrite.
RUN_FILES = ("config.json", "model.safetensors", "metrics.json", "curve.png", "adapter")


def check_nothing_to_replace(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to write a run over a model or results already in ``out``.

    ``--resume`` continues a run whose checkpoint is there (its files are its own);
    without a checkpoint there is nothing to resume, so it protects the files too.
    """
    from zoo.finetune.loop import CHECKPOINT

    if overwrite or not out.is_dir() or (resume and (out / CHECKPOINT).is_file()):
        return
    held = [n for n in RUN_FILES if (out / n).exists()]
    if held:
        what = "no checkpoint to resume, but " if resume else ""
        raise UsageError(f"{out}: {what}holds {', '.join(held)} of an earlier run or a saved "
                         "model; pass --overwrite to replace them, or choose another --out")


def check_space_for_weights(out: Path, model, head: str | None, *, resume: bool) -> None:
    """Before the data loads: refuse when not even the final weights fit."""
    from zoo.finetune.loop import CHECKPOINT
    from zoo.finetune.outputs import check_disk_space, weights_lower_bound

    if resume and (out / CHECKPOINT).is_file():
        return        # an earlier run's checkpoint already takes more than the weights
    check_disk_space(out, weights_lower_bound(model, skip=[head] if head else []),
                     what="the fine-tuned weights alone")


def check_run_space(out: Path, estimate, *, resume: bool, technique: str = "full",
                    free: int | None = None) -> None:
    """Refuse a run whose files (``estimate``, an :class:`~.outputs.OutputEstimate`) do not
    fit next to ``out``; when resuming, the checkpoint already on disk counts as written."""
    from zoo.finetune.loop import CHECKPOINT
    from zoo.finetune.outputs import check_disk_space, human_bytes

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
