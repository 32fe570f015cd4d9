"""``zoo finetune``: fine-tune a model on a data set with one technique (heavy imports inside)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from zoo.cli.app import _registry, app, handles_errors, heavy
from zoo.cli.render import _json, _table
from zoo.cli.status import status
from zoo.errors import UsageError


def _parse_group_lrs(pairs: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq or not key.strip():
            raise UsageError(f"--group-lr '{pair}' must look like PREFIX=LR "
                             "(e.g. features=1e-4)")
    return out


@app.command("finetune")
@handles_errors
def finetune_cmd(
    model: Annotated[str, typer.Argument(help="NAME, NAME.TAG or a saved model DIR.")],
    data: Annotated[str, typer.Option(
        "--data", "-d", help="digits, shapes, sentiment, karate, an image folder (one "
        "sub-folder per class), or a .csv/.jsonl file; by task: an image folder "
        "(generation), a COCO .json (detection), text pairs or lines (translation, text "
        "generation), a .json graph file (graphs).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.",
                                      metavar="DIR")],
    technique: Annotated[str, typer.Option(
        "--technique", "-t",
        help="full, freeze, feature-extract, lora, distill or sft.")] = "full",
    epochs: Annotated[int | None, typer.Option(
        "--epochs", "-e", help="Epochs (default: from the data's size, at least 100 "
        "steps).")] = None,
    lr: Annotated[float | None, typer.Option(
        "--lr", help="Peak learning rate (default: by technique and model; printed).")] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", "-b", help="Global batch size (default 32, less on small data).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    val_data: Annotated[str | None, typer.Option(
        "--val-data", help="Validation data (default: a fixed 20% of --data).")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", help="Use at most this many training samples.")] = None,
    val_limit: Annotated[int | None, typer.Option(
        "--val-limit", help="Use at most this many validation samples.")] = None,
    num_classes: Annotated[int | None, typer.Option(
        "--num-classes", help="Give the classifier this many classes (replaces a trained "
        "model's head).")] = None,
    freeze_groups: Annotated[int, typer.Option(
        "--freeze", help="freeze: number of leading layer groups to freeze.")] = 0,
    freeze_pattern: Annotated[list[str] | None, typer.Option(
        "--freeze-pattern", help="freeze: parameter name prefix or pattern (repeatable).")
    ] = None,
    no_cache: Annotated[bool, typer.Option(
        "--no-cache", help="feature-extract: do not cache backbone features.")] = False,
    lora_r: Annotated[int, typer.Option("--lora-r")] = 8,
    lora_alpha: Annotated[int, typer.Option("--lora-alpha")] = 16,
    lora_target: Annotated[list[str] | None, typer.Option(
        "--lora-target", help="lora: module name (repeatable; default from the catalog).")
    ] = None,
    teacher: Annotated[str | None, typer.Option(
        "--teacher", help="distill: the teacher (NAME.TAG or DIR).")] = None,
    temperature: Annotated[float, typer.Option("--temperature")] = 4.0,
    alpha: Annotated[float, typer.Option(
        "--alpha", help="distill: weight of the teacher's soft targets.")] = 0.7,
    layer_decay: Annotated[float | None, typer.Option(
        "--layer-decay", help="Layer-wise LR decay per layer group (e.g. 0.75).")] = None,
    group_lr: Annotated[list[str] | None, typer.Option(
        "--group-lr", help="PREFIX=LR differential learning rate (repeatable).")] = None,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 0.01,
    dropout: Annotated[float | None, typer.Option(
        "--dropout", help="Set every dropout layer's probability.")] = None,
    label_smoothing: Annotated[float, typer.Option("--label-smoothing")] = 0.0,
    early_stopping: Annotated[int | None, typer.Option(
        "--early-stopping", help="Patience in epochs on --metric.")] = None,
    metric: Annotated[str | None, typer.Option(
        "--metric", help="Validation metric for --early-stopping: accuracy (classifiers' "
        "default), macro_f1, loss; the task's own otherwise (fd, map50, exact_match...).")
    ] = None,
    optimizer: Annotated[str, typer.Option("--optimizer", help="adamw, adam or sgd.")] = "adamw",
    schedule: Annotated[str, typer.Option(
        "--schedule", help="linear, cosine or constant (after warmup).")] = "linear",
    warmup: Annotated[float, typer.Option(
        "--warmup", help="Warmup: fraction of steps, or steps if >= 1.")] = 0.1,
    max_length: Annotated[int, typer.Option("--max-length", help="Text: tokens.")] = 64,
    text_column: Annotated[str, typer.Option("--text-column")] = "text",
    label_column: Annotated[str, typer.Option("--label-column")] = "label",
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue from DIR/checkpoints/last.pt.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite",
        help="Start over even if DIR holds a checkpoint, model or metrics.")] = False,
    nproc: Annotated[int, typer.Option(
        "--nproc", help="Data-parallel processes on this machine (DistributedDataParallel, "
        "started as torchrun --standalone would; or launch with torchrun itself).")] = 1,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Fine-tune a model on a data set; write weights, config, metrics and a curve to DIR.

    MODEL is NAME (random weights), NAME.TAG (trained weights) or a saved DIR;
    'zoo recommend' suggests a model and a technique.

    Examples:
      zoo finetune lenet5 --data digits --out runs/lenet
      zoo finetune minilm.sentence --data reviews.csv --technique lora --out runs/lora
      zoo finetune runs/lenet --data photos/ --num-classes 3 --technique feature-extract -o r2
    """
    heavy()
    _registry()
    group_lrs = _parse_group_lrs(group_lr or [])
    # Building the model and reading the data come before the first progress bar, and
    # take seconds (torch's import alone ~3 s; an image folder is decoded up front).
    status(f"Fine-tuning {model} on {data}: loading the model and the data...")
    from zoo.finetune.api import finetune
    from zoo.finetune.outputs import TrainingInterrupted

    try:
        result = finetune(
            model, data, out=out, technique=technique, epochs=epochs, lr=lr,
            batch_size=batch_size, seed=seed, val_data=val_data, limit=limit,
            val_limit=val_limit, num_classes=num_classes, freeze_groups=freeze_groups,
            freeze_patterns=list(freeze_pattern or []), cache_features=not no_cache,
            lora_r=lora_r, lora_alpha=lora_alpha, lora_targets=lora_target or None,
            teacher=teacher, temperature=temperature, alpha=alpha, layer_decay=layer_decay,
            group_lrs=group_lrs, weight_decay=weight_decay,
            dropout=dropout, label_smoothing=label_smoothing, early_stopping=early_stopping,
            metric=metric, optimizer=optimizer, schedule=schedule, warmup=warmup,
            max_length=max_length, text_column=text_column, label_column=label_column,
            resume=resume, overwrite=overwrite, nproc=nproc, device=device)
    except TrainingInterrupted as e:
        # Ctrl-C: one line saying what was kept and how to continue (exit 130, as a shell
        # reports SIGINT).
        print(f"Interrupted: {e}", file=sys.stderr)
        raise typer.Exit(130) from None
    if int(os.environ.get("RANK", "0")) != 0:
        return          # under torchrun every process runs this command; rank 0 reports
    summary = {"out": str(result.out),
               "technique": result.extra.get("technique", technique), **result.metrics,
               "trainable_params": result.trainable_params,
               "total_params": result.total_params,
               "trainable_percent": round(result.trainable_percent, 3),
               "epochs": len(result.history)}
    if as_json:
        return _json(summary)
    _table(["FIELD", "VALUE"], [[k, f"{v:.4f}" if isinstance(v, float) else str(v)]
                                for k, v in summary.items()])
    print(f"Rebuild it with: zoo get {result.out}", file=sys.stderr)

