"""What the user sees and keeps: progress on stderr, metrics.json and a training-curve PNG."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from .outputs import atomic_write

METRICS_FILE = "metrics.json"
CURVE_FILE = "curve.png"


class Progress:
    """Rich progress bars on a terminal (epoch/step, loss, throughput, ETA); one plain
    line per epoch on stderr otherwise (logs, CI, pipes)."""

    def __init__(self, *, enabled: bool = True):
        self.enabled = enabled
        self._rich = None
        self._task = None
        self._samples = 0
        self._t0 = 0.0
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(),
                MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
                TextColumn("{task.fields[rate]:.0f} samples/s"), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False)
            self._rich.start()

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        self._samples, self._t0 = 0, time.perf_counter()
        if self._rich is not None:
            self._task = self._rich.add_task("train", total=steps, epoch=f"{epoch}/{epochs}",
                                             loss=float("nan"), rate=0.0)

    def step(self, *, loss: float, samples: int) -> None:
        self._samples += samples
        if self._rich is not None and self._task is not None:
            rate = self._samples / max(time.perf_counter() - self._t0, 1e-9)
            self._rich.update(self._task, advance=1, loss=loss, rate=rate)

    def end_epoch(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        line = (f"epoch {record['epoch']}: train loss {record['train_loss']:.4f}"
                + (f", val loss {record['val_loss']:.4f}, accuracy {record['accuracy']:.4f}"
                   if "accuracy" in record else "")
                + (f", macro-F1 {record['macro_f1']:.4f}" if "macro_f1" in record else "")
                + f" ({record['samples_per_s']:.0f} samples/s, {record['seconds']:.1f}s)")
        if self._rich is not None:
            self._rich.console.print(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()


def write_metrics(out: Path, payload: dict[str, Any]) -> Path:
    """``out/metrics.json``, written atomically (a full disk keeps the previous file)."""
    text = json.dumps(payload, indent=2, default=str) + "\n"
    return atomic_write(Path(out) / METRICS_FILE, lambda f: f.write(text.encode()))


def plot_curves(out: Path, history: list[dict[str, Any]], title: str = "") -> Path | None:
    """Loss (train, validation) and accuracy/macro-F1 per epoch, as a PNG."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    if "val_loss" in history[0]:
        ax1.plot(epochs, [h.get("val_loss") for h in history], "o-", label="validation")
        ax2.plot(epochs, [h.get("accuracy") for h in history], "o-", label="accuracy")
        if "macro_f1" in history[0]:
            ax2.plot(epochs, [h.get("macro_f1") for h in history], "o-", label="macro-F1")
        ax2.set_ylim(0, 1.02)
        ax2.legend()
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation")
    fig.suptitle(title)
    fig.tight_layout()
    try:
        return atomic_write(Path(out) / CURVE_FILE,
                            lambda f: fig.savefig(f, dpi=80, format="png"))
    finally:
        plt.close(fig)
