"""Model selection advice from catalog metadata alone (never imports torch).

``recommend(task, data_size=..., compute=..., max_params=...)`` ranks the catalog's models
for a task and says, for each, which fine-tuning technique fits and why. The rules are
the usual transfer-learning advice, written down so they can be read and tested:

- Pretrained weights matter most when labelled data is scarce: with under ~1,000
  examples, extract features (frozen backbone, new head); with under ~10,000, freeze the
  early layer groups and train the rest; with more, fine-tune everything.
- A model that is large for the compute budget is tuned with LoRA (few trainable
  parameters, the frozen base fits where full fine-tuning's optimizer state would not).
- Without pretrained weights a model trains from scratch, which small data cannot support.
- On a CPU or mobile budget, models tagged mobile / small / efficient are preferred.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import UsageError
from .spec import ModelSpec

#: compute budget -> (parameters that train comfortably in full, hard ceiling for LoRA)
COMPUTE = {
    "cpu": (15_000_000, 150_000_000),
    "small-gpu": (150_000_000, 2_000_000_000),
    "large-gpu": (2_000_000_000, 100_000_000_000),
}
SMALL_DATA = 1_000
MEDIUM_DATA = 10_000
LIGHT_TAGS = {"mobile", "small", "efficient", "tiny"}
#: pretraining data broad enough to transfer to a user's own task (words in ``dataset``)
BROAD_DATA = ("imagenet", "coco", "wikipedia", "bookcorpus", "sentence", "webtext", "laion")


@dataclass
class Recommendation:
    """One ranked model: what to load, how to tune it, and why."""

    name: str                     # NAME.TAG when pretrained weights are advised, else NAME
    model: str
    score: float
    technique: str                # full | freeze | feature-extract | lora
    params: int | None
    gflops: float | None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_count(text: str | int | float | None) -> int | None:
    """``"25M"``, ``"1.5B"``, ``"800k"``, ``"2e7"`` or a number -> an integer count."""
    if text is None:
        return None
    if isinstance(text, int | float):
        return int(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kKmMbBgG]?)\s*", str(text))
    if not m:
        raise UsageError(f"'{text}' is not a count; write e.g. 5000, 25M, 1.5B")
    scale = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def _best_tag(spec: ModelSpec, task: str) -> str | None:
    """The trained model to start from: a tag made for ``task``, else the default tag."""
    fitting = [t for t in spec.pretrained if spec.task_for(t) == task]
    if not fitting:
        return None
    if spec.default_tag in fitting:
        return spec.default_tag
    return fitting[0]


def _technique(spec: ModelSpec, pretrained: bool, data_size: int | None, comfortable: int,
               reasons: list[str]) -> str:
    params = spec.params or 0
    if pretrained and params > comfortable:
        reasons.append(f"{_fmt(params)} parameters is large for this compute: LoRA trains "
                       "a few adapters and keeps the base frozen")
        return "lora"
    if not pretrained:
        reasons.append("no pretrained weights: trains from scratch (full)")
        return "full"
    if data_size is None:
        reasons.append("data size unknown: freezing early layers is the safe default")
        return "freeze"
    if data_size < SMALL_DATA:
        reasons.append(f"{data_size:,} examples is little data: keep the pretrained backbone "
                       "frozen and train a new head (feature extraction)")
        return "feature-extract"
    if data_size < MEDIUM_DATA:
        reasons.append(f"{data_size:,} examples: freeze the early layer groups, tune the rest")
        return "freeze"
    reasons.append(f"{data_size:,} examples is enough to fine-tune every weight")
    return "full"


def _fmt(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def recommend(task: str, *, data_size: int | None = None, compute: str = "cpu",
              max_params: int | None = None, registry=None,
              top: int | None = 5) -> list[Recommendation]:
    """Rank the catalog's models for ``task`` and advise a fine-tuning technique for each.

    Raises:
        UsageError: unknown task or compute budget (with the known ones).
    """
    if registry is None:
        from .registry import default_registry

        registry = default_registry()
    if compute not in COMPUTE:
        raise UsageError(f"unknown compute '{compute}'; use one of " + ", ".join(COMPUTE))
    tasks = sorted({s.task for s in registry})
    if task not in tasks:
        import difflib

        close = difflib.get_close_matches(task, tasks, n=1)
        raise UsageError(f"unknown task '{task}'" + (f"; did you mean '{close[0]}'?" if close
                                                       else "") + " Tasks: " + ", ".join(tasks))
    if data_size is not None and data_size < 1:
        raise UsageError("--data-size must be a positive number of labelled examples")
    comfortable, ceiling = COMPUTE[compute]
    out = []
    for spec in registry.list(task=task):
        reasons: list[str] = []
        params = spec.params
        if max_params is not None and params is not None and params > max_params:
            continue
        if params is not None and params > ceiling:
            continue
        tag = _best_tag(spec, task)
        score = 0.0
        if tag:
            pre = spec.pretrained[tag]
            broad = any(w in (pre.dataset or "").lower() for w in BROAD_DATA)
            # Weights learnt on broad data transfer; a toy set's weights much less so.
            score += (3.0 if (data_size or 0) < MEDIUM_DATA else 1.5) * (1.0 if broad else 0.4)
            shown = ", ".join(f"{k} {v:g}" for k, v in list(pre.metrics.items())[:2])
            reasons.append(f"pretrained weights '{spec.name}.{tag}'"
                           + (f" on {pre.dataset}" if pre.dataset else "")
                           + (f" ({shown})" if shown else ""))
            if broad and pre.metrics:
                first = next(iter(pre.metrics.values()))
                score += 2.0 * (first / 100 if first > 1 else first)
        elif data_size is not None and data_size < SMALL_DATA:
            score -= 2.0
        if params is None:
            score -= 0.5
            reasons.append("size unknown")
        else:
            # Penalise size beyond the comfortable budget, on a log scale.
            over = max(0.0, math.log10(params / comfortable))
            score -= 1.5 * over
            if compute == "cpu":  # on a CPU every extra parameter costs wall time
                score -= 0.5 * max(0.0, math.log10(params / 1e6))
            if over == 0:
                reasons.append(f"{_fmt(params)} parameters fits {compute} comfortably")
        light = LIGHT_TAGS & set(spec.tags)
        if compute == "cpu" and light:
            score += 1.0
            reasons.append("tagged " + ", ".join(sorted(light)) + ": suits a CPU budget")
        technique = _technique(spec, bool(tag), data_size, comfortable, reasons)
        out.append(Recommendation(name=f"{spec.name}.{tag}" if tag else spec.name,
                                  model=spec.name, score=round(score, 3), technique=technique,
                                  params=params, gflops=spec.gflops, reasons=reasons))
    out.sort(key=lambda r: (-r.score, r.params or 0, r.name))
    return out[:top] if top else out
