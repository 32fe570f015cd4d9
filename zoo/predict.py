"""``zoo.predict``: run a trained model on one raw input and decode the answer.

One function per task; family plugins provide the ones only they can do (text
tokenisers, graph inputs) through the same ``TASKS`` table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zoo.errors import UsageError

#: task, or (family, task) when families decode differently ->
#: "module:function"(model, spec, tag, inputs, **options)
TASKS: dict[str | tuple[str, str], str] = {
    "image-classification": "zoo.predict:classify_image",
    ("cnn", "object-detection"): "zoo.plugins.cnn.yolo:detect",
    ("gan", "image-generation"): "zoo.plugins.gan.sampling:generate",
    ("gan", "image-to-image"): "zoo.plugins.gan.sampling:translate_image",
    ("transformer", "text-classification"): "zoo.plugins.transformer.minilm:classify_text",
    ("transformer", "text-generation"): "zoo.plugins.transformer.gpt:predict_text",
    ("transformer", "translation"): "zoo.plugins.transformer.seq2seq:predict_translation",
    ("transformer", "feature-extraction"): "zoo.plugins.transformer.minilm:extract_features",
    ("transformer", "object-detection"): "zoo.plugins.transformer.detr:detect",
    ("rnn", "text-classification"): "zoo.plugins.rnn.text:classify_text",
    ("rnn", "token-classification"): "zoo.plugins.rnn.text:tag_tokens",
    ("gnn", "node-classification"): "zoo.plugins.gnn.predict:classify_nodes",
    ("gnn", "graph-classification"): "zoo.plugins.gnn.predict:classify_graph",
}


def classify_image(model, spec, tag, image, *, top_k: int = 5) -> list[tuple[str, float]]:
    """Top-k ``(label, probability)`` for one image (path, PIL image or array)."""
    import torch

    from zoo.loading.preprocess import image_to_tensor, model_input

    # the model's one preprocessing, as fine-tuning trained it (saved in its config)
    x = image_to_tensor(image, model_input(spec, tag))
    with torch.inference_mode():
        probs = torch.softmax(model(x), dim=-1)[0]
    labels = spec.pretrained[tag].labels if tag else None
    k = min(top_k, probs.numel())
    values, idx = probs.topk(k)
    return [((labels[i] if labels else str(i)), float(v))
            for v, i in zip(values.tolist(), idx.tolist(), strict=True)]


def predict(name: str, inputs: Any, **options: Any):
    """Build ``NAME.TAG`` (cached per process) and run its task's decoder on ``inputs``.

    Example:
        >>> zoo.predict("lenet5.digits", "seven.png")
        [('7', 0.98), ('1', 0.01), ...]
    """
    import os

    from zoo.api import _looks_like_dir
    from zoo.api import spec as resolve
    from zoo.loading.build import build, import_object, load_dir

    saved = _looks_like_dir(os.fspath(name))
    spec, tag = _saved(os.fspath(name)) if saved else resolve(name)
    task = spec.task_for(tag)
    fn_path = TASKS.get((spec.family, task)) or TASKS.get(task)
    if fn_path is None:
        raise UsageError(f"no predictor for task '{task}' yet; use zoo.get('{name}') "
                         "and call the model")
    key = (os.path.abspath(name) if saved else spec.name, tag)
    model = _MODELS.get(key)
    if model is None:
        model = _MODELS[key] = load_dir(name) if saved else build(spec, tag)
    fn: Callable[..., Any] = import_object(fn_path, what=f"predictor for '{task}'")
    return fn(model, spec, tag, inputs, **options)


_MODELS: dict[tuple[str, str | None], Any] = {}


def _saved(path: str):
    """``(spec, tag)`` of a saved or fine-tuned directory: the catalog's spec with one tag
    holding the directory's labels, task and input spec (its preprocessing)."""
    from dataclasses import replace

    from zoo.loading.build import read_config
    from zoo.registry import default_registry
    from zoo.registry.spec import FrozenDict, InputSpec, PretrainedSpec

    cfg = read_config(path)
    inp = cfg.get("input")
    if isinstance(inp, dict):
        inp = InputSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in inp.items()
                           if k in InputSpec.__dataclass_fields__})
    pre = PretrainedSpec(tag="saved", source=f"file:{path}", input=inp or None,
                         labels=tuple(cfg["labels"]) if cfg.get("labels") else None,
                         task=cfg.get("task") if isinstance(cfg.get("task"), str) else None)
    return replace(default_registry().spec(cfg.get("name")),
                   pretrained=FrozenDict({"saved": pre})), "saved"
