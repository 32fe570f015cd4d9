"""What the user sees and keeps: progress on stderr, metrics.json and a training-curve PNG."""

from __future__ import annotations

import json
import math
import numbers
import sys
import time
from pathlib import Path
from typing import Any

from zoo.finetune.outputs import atomic_write

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
    """Loss (train, validation) and validation accuracy/macro-F1 per epoch, as a PNG.

    The score axis spans the data, not [0, 1], so that the last few points (where runs
    differ) are told apart; loss goes on a log scale once it falls by more than a decade.
    The right panel's title names the best epoch. Written atomically.
    """
    if not history:
        return None
    _PRELOAD.join()
    # A bare Figure (Agg canvas) rather than pyplot: no global figure state, and pyplot's
    # own import (backends, colormaps registry) is skipped.
    from matplotlib.figure import Figure

    fig = Figure()
    _draw(fig, history, title)
    return atomic_write(Path(out) / CURVE_FILE,
                        lambda f: fig.savefig(f, dpi=110, format="png",
                                              pil_kwargs={"optimize": True}))


def _import_matplotlib() -> None:
    import contextlib

    with contextlib.suppress(Exception):
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401
        import matplotlib.ticker  # noqa: F401


class _Preload:
    """matplotlib imported on a thread while the model trains: its import (about a second,
    pure Python) overlaps the training's torch kernels instead of following them."""

    def __init__(self):
        self._thread = None

    def start(self) -> None:
        import threading

        if self._thread is None:
            self._thread = threading.Thread(target=_import_matplotlib, daemon=True,
                                            name="zoo-preload-matplotlib")
            self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


_PRELOAD = _Preload()


def preload() -> None:
    """Start importing what :func:`plot_curves` needs (call when a run starts)."""
    _PRELOAD.start()


def _draw(fig: Any, history: list[dict[str, Any]], title: str) -> None:
    """Lay out the loss panel and, when there are validation scores, the score panel."""
    from matplotlib.ticker import MaxNLocator, NullFormatter

    epochs = [h["epoch"] for h in history]
    scores = {key: _series(history, key) for key in ("accuracy", "macro_f1")}
    scores = {k: v for k, v in scores.items() if _finite(v)}
    if scores:
        fig.set_size_inches(9, 3.5)
        ax1, ax2 = fig.subplots(1, 2)
    else:  # no validation split: a score panel would be empty
        fig.set_size_inches(5, 3.5)
        ax1, ax2 = fig.subplots(1, 1), None
    train_loss = _series(history, "train_loss")
    ax1.plot(epochs, train_loss, "o-", ms=4, label="train")
    losses = _finite(train_loss)
    val_loss = _series(history, "val_loss")
    if _finite(val_loss):
        ax1.plot(epochs, val_loss, "s-", ms=4, label="validation")
        losses += _finite(val_loss)
    # a loss that falls from 2 to 0.03 is a flat line after epoch 3 on a linear axis
    if losses and min(losses) > 0 and max(losses) / min(losses) > 10:
        ax1.set_yscale("log")
        ax1.yaxis.set_major_formatter(_plain_number)
        # 2 and 5 labelled too over a decade or two; past that they would crowd the axis
        ax1.yaxis.set_minor_formatter(_plain_number if max(losses) / min(losses) <= 300
                                      else NullFormatter())
    ax1.set_title("loss", fontsize=10)
    ax1.set_ylabel("loss")
    ax1.legend(frameon=False, loc="best")
    axes = [ax1]
    if ax2 is not None:
        styles = {"accuracy": ("o-", "accuracy", {}),
                  # accuracy and macro-F1 coincide on balanced data: dashed, open squares
                  # drawn over the solid line keep both visible
                  "macro_f1": ("s--", "macro-F1", {"mfc": "none", "mew": 1.2, "ms": 6})}
        for key, values in scores.items():
            fmt, label, extra = styles[key]
            # unclipped: a marker at a perfect 1.0 sits on the axis' top edge, drawn whole
            ax2.plot(epochs, values, fmt, label=label, clip_on=False, **{"ms": 4, **extra})
        found = _finite([v for vs in scores.values() for v in vs])
        lo, hi = min(found), max(found)
        lo, hi = max(0.0, lo - 0.05), min(1.0, hi + 0.02)
        if hi - lo < 0.05:  # a flat line: give it some room rather than a 0.001 axis
            lo, hi = max(0.0, hi - 0.05), max(hi, 0.05)
        ax2.set_ylim(lo, hi)
        key = "accuracy" if "accuracy" in scores else next(iter(scores))
        # the first epoch that reached the best score (ties go to the earlier one)
        best_value, neg_epoch = max((v, -e) for e, v in zip(epochs, scores[key], strict=True)
                                    if math.isfinite(v))
        best_epoch = -neg_epoch
        ax2.axvline(best_epoch, color="0.45", lw=1.0, ls=":", zorder=0)
        # padded: unclipped markers at 1.0 would otherwise touch the title
        ax2.set_title(f"best {styles[key][1]} {best_value:.3f} (epoch {best_epoch})",
                      fontsize=10, pad=8)
        ax2.set_ylabel("validation score")
        ax2.legend(frameon=False, loc="best")
        axes.append(ax2)
    # the epochs' own range: with one finite point matplotlib would zoom to 1.9..2.1
    margin = max(0.5, 0.04 * (max(epochs) - min(epochs)))
    for ax in axes:
        ax.set_xlim(min(epochs) - margin, max(epochs) + margin)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10],
                                                  min_n_ticks=1))
        ax.grid(True, which="major", color="0.9", lw=0.8)
        ax.spines[["top", "right"]].set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()


def _series(history: list[dict[str, Any]], key: str) -> list[float]:
    """``history[*][key]`` as floats, NaN where an epoch lacks it (matplotlib leaves a gap)."""
    out = []
    for h in history:
        v = h.get(key)
        out.append(float(v) if isinstance(v, numbers.Real) else float("nan"))
    return out


def _finite(values: list[float]) -> list[float]:
    """``values`` without NaN and infinities (a diverged epoch must not set the axes)."""
    return [v for v in values if math.isfinite(v)]


def _plain_number(value: float, _pos: Any = None) -> str:
    """Log-axis tick labels as 0.05, 0.1, 2 rather than 5×10⁻²; only 1, 2 and 5 per decade
    get one, so that the minor ticks do not crowd."""
    if value <= 0:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
    if round(mantissa, 6) not in (1.0, 2.0, 5.0):
        return ""
    return f"{value:g}"
