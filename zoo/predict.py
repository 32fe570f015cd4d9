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
    ("cnn", "object-detection"): "zoo.plugins.cnn.detection:detect",
    ("gan", "image-generation"): "zoo.plugins.gan.sampling:generate",
    ("gan", "image-to-image"): "zoo.plugins.gan.sampling:translate_image",
    ("transformer", "text-classification"): "zoo.plugins.transformer.minilm:classify_text",
    ("transformer", "text-generation"): "zoo.plugins.transformer.gpt:predict_text",
    ("transformer", "translation"): "zoo.plugins.transformer.seq2seq:predict_translation",
    ("transformer", "feature-extraction"): "zoo.plugins.transformer.minilm:extract_features",
    ("transformer", "fill-mask"): "zoo.plugins.transformer.text:fill_mask",
    ("transformer", "object-detection"): "zoo.plugins.transformer.detr:detect",
    ("rnn", "text-classification"): "zoo.plugins.rnn.text:classify_text",
    ("rnn", "token-classification"): "zoo.plugins.rnn.text:tag_tokens",
    ("gnn", "node-classification"): "zoo.plugins.gnn.predict:classify_nodes",
    ("gnn", "graph-classification"): "zoo.plugins.gnn.predict:classify_graph",
}


def classify_image(model, spec, tag, image, *, top_k: int = 5) -> list[tuple[str, float]]:
    """Top-k ``(label, probability)`` for one image (path, PIL image or array)."""
    import torch

    from zoo.loading.preprocess import image_to_tensor

    inp = spec.input_for(tag)
    x = image_to_tensor(image, inp, center=bool(inp.invert is not None or "digits" in spec.tags
                                                 or (tag or "").endswith("digits")))
    with torch.inference_mode():
        out = model(x)
        # transformers' image classifiers return an output object holding the logits
        probs = torch.softmax(getattr(out, "logits", out), dim=-1)[0]
    from zoo.loading.loaders import labels_of

    # the tag's own names, else the ones the weights came with (torchvision's categories)
    labels = (spec.pretrained[tag].labels if tag else None) or labels_of(model)
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
    from zoo.api import resolve_ref
    from zoo.loading.build import import_object

    # NAME[.TAG], a saved or fine-tuned directory, or hf-hub:ORG/NAME (task from the repo)
    ref = resolve_ref(name)
    spec, tag, task = ref.spec, ref.tag, ref.task
    fn_path = TASKS.get((spec.family, task)) or TASKS.get(task)
    if fn_path is None:
        raise UsageError(f"no predictor for task '{task}' yet; use zoo.get('{name}') "
                         "and call the model")
    key = (str(ref.directory) if ref.directory else spec.name, tag)
    model = _MODELS.get(key)
    if model is None:
        model = _MODELS[key] = ref.build()
    fn: Callable[..., Any] = import_object(fn_path, what=f"predictor for '{task}'")
    return fn(model, spec, tag, inputs, **options)


_MODELS: dict[tuple[str, str | None], Any] = {}
