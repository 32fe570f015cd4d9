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
- An encoder's feature-extraction weights (minilm.sentence) are offered for a
  classification task when ``zoo finetune`` can put that task's head on them: frozen
  encoder + new head is what little data wants. ``zoo finetune`` gives an encoder a head
  by rebuilding it with ``num_classes`` (zoo.finetune.api._fit_head), so the catalog must
  show that the model's builder does that for the task (another tag of the model made for
  the task with ``num_classes`` in its kwargs) and the encoder's own kwargs must set no
  class count.

A trained model is judged by its own size (``params_for``: a tag's kwargs may shrink
the architecture a lot), not the architecture's.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from zoo.errors import UsageError
from zoo.registry.spec import ModelSpec

#: compute budget -> (parameters that train comfortably in full, hard ceiling for LoRA)
COMPUTE = {
    "cpu": (15_000_000, 150_000_000),
    "small-gpu": (150_000_000, 2_000_000_000),
    "large-gpu": (2_000_000_000, 100_000_000_000),
}
#: The task of encoders whose tags ``zoo finetune`` can give a classification head.
ENCODER_TASK = "feature-extraction"
#: Builder kwargs that already set a class count (zoo.finetune.techniques.CLASS_KWARGS):
#: with one of them an encoder is not rebuilt with a new head.
CLASS_KWARGS = ("num_classes", "out_channels", "num_labels")
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


def _encoder_tag(spec: ModelSpec, task: str) -> str | None:
    """Encoder weights of ``spec`` that ``zoo finetune`` can give a new ``task`` head, else
    ``None``: a tag whose task is feature extraction and whose kwargs set no class count,
    on a model that another tag shows building a ``task`` model from ``num_classes``."""
    if task == ENCODER_TASK:
        return None
    makes_task = any(spec.task_for(t) == task and "num_classes" in pre.kwargs
                     for t, pre in spec.pretrained.items())
    if not makes_task:
        return None
    encoders = [t for t, pre in spec.pretrained.items()
                if spec.task_for(t) == ENCODER_TASK
                and not any(k in spec.kwargs or k in pre.kwargs for k in CLASS_KWARGS)]
    if not encoders:
        return None
    return spec.default_tag if spec.default_tag in encoders else encoders[0]


def _encoder_technique(params: int, data_size: int | None, comfortable: int,
                       reasons: list[str]) -> str:
    """How to tune an encoder that gets a new head. ``freeze`` is never advised: the
    encoder's layer groups do not name its parameters once it sits inside the classifier
    (``bert.embeddings...``), so ``zoo finetune --freeze N`` refuses it."""
    if data_size is None or data_size < SMALL_DATA:
        amount = ("data size unknown" if data_size is None
                  else f"{data_size:,} examples is little data")
        reasons.append(f"{amount}: keep the encoder frozen and train only the new head on its "
                       "features (feature extraction; the features are computed once)")
        return "feature-extract"
    if params > comfortable:
        reasons.append(f"{_fmt(params)} parameters is large for this compute: LoRA trains "
                       "a few adapters in the encoder and the new head")
        return "lora"
    if data_size < MEDIUM_DATA:
        reasons.append(f"{data_size:,} examples: LoRA adapters tune the encoder lightly "
                       "while the new head trains")
        return "lora"
    reasons.append(f"{data_size:,} examples is enough to fine-tune the encoder with its "
                   "new head")
    return "full"


def _technique(params: int | None, pretrained: bool, data_size: int | None, comfortable: int,
               reasons: list[str]) -> str:
    params = params or 0
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
        from zoo.registry import default_registry

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
        candidates = [(_best_tag(spec, task), False)]
        encoder = _encoder_tag(spec, task)
        if encoder is not None:
            candidates.append((encoder, True))
        for tag, new_head in candidates:
            rec = _rate(spec, tag, task, new_head=new_head, data_size=data_size,
                        compute=compute, max_params=max_params)
            if rec is not None:
                out.append(rec)
    out.sort(key=lambda r: (-r.score, r.params or 0, r.name))
    return out[:top] if top else out


def _rate(spec: ModelSpec, tag: str | None, task: str, *, new_head: bool,
          data_size: int | None, compute: str, max_params: int | None) -> Recommendation | None:
    """Score one starting point (``spec`` with weights ``tag``, or random weights); ``None``
    when it is too big. ``new_head``: ``tag`` is an encoder that gets a new ``task`` head."""
    comfortable, ceiling = COMPUTE[compute]
    reasons: list[str] = []
    params = spec.params_for(tag)
    if max_params is not None and params is not None and params > max_params:
        return None
    if params is not None and params > ceiling:
        return None
    score = 0.0
    if tag:
        pre = spec.pretrained[tag]
        broad = any(w in (pre.dataset or "").lower() for w in BROAD_DATA)
        # Weights learnt on broad data transfer; a toy set's weights much less so.
        score += (3.0 if (data_size or 0) < MEDIUM_DATA else 1.5) * (1.0 if broad else 0.4)
        shown = ", ".join(f"{k} {v:g}" for k, v in list(pre.metrics.items())[:2])
        what = "encoder weights" if new_head else "pretrained weights"
        reasons.append(f"{what} '{spec.name}.{tag}'"
                       + (f" on {pre.dataset}" if pre.dataset else "")
                       + (f" ({shown})" if shown else ""))
        if new_head:
            reasons.append(f"zoo finetune builds it with a new {task} head (num_classes)")
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
    if new_head:
        technique = _encoder_technique(params or 0, data_size, comfortable, reasons)
    else:
        technique = _technique(params, bool(tag), data_size, comfortable, reasons)
    return Recommendation(name=f"{spec.name}.{tag}" if tag else spec.name, model=spec.name,
                          score=round(score, 3), technique=technique, params=params,
                          gflops=spec.gflops_for(tag), reasons=reasons)
