"""``zoo.predict``: run a trained model on one raw input and decode the answer.

The decoder is the model's task adapter's predictor (:mod:`zoo.tasks`): zoo's own tasks
come from :mod:`zoo.tasks.builtin` (chosen by family where families decode differently),
and a plugin brings its own through the ``zoo_task_adapter`` hook.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import UsageError
from zoo.tasks.builtin import PREDICTORS as TASKS  # noqa: F401 - the table's old name


def classify_image(model, spec, tag, image, *, top_k: int = 5) -> list[tuple[str, float]]:
    """Top-k ``(label, probability)`` for one image (path, PIL image or array)."""
    import torch

    from zoo.loading.preprocess import image_to_tensor, model_input

    # the model's one preprocessing, as fine-tuning trained it (saved in its config)
    x = image_to_tensor(image, model_input(spec, tag))
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
    from zoo.tasks import predictor_for

    # NAME[.TAG], a saved or fine-tuned directory, or hf-hub:ORG/NAME (task from the repo)
    ref = resolve_ref(name)
    spec, tag, task = ref.spec, ref.tag, ref.task
    fn = predictor_for(spec, task, tag)
    if fn is None:
        raise UsageError(f"no predictor for task '{task}' of family '{spec.family}' yet; use "
                         f"zoo.get('{name}') and call the model (a plugin adds one with the "
                         "zoo_task_adapter hook)")
    key = (str(ref.directory) if ref.directory else spec.name, tag)
    model = _MODELS.get(key)
    if model is None:
        model = _MODELS[key] = ref.build()
        if hasattr(model, "eval"):
            model.eval()
    return fn(model, spec, tag, inputs, **options)


_MODELS: dict[tuple[str, str | None], Any] = {}
