"""Write a built model in the native layout of the library behind it.

* ``transformers``: ``save_pretrained`` (``config.json`` with ``model_type`` and
  ``architectures``, class names in ``id2label``) and the tokenizer's own
  ``save_pretrained`` beside it, so ``AutoModelFor...`` / ``AutoTokenizer`` /
  ``pipeline`` load the repo. Weights are written with the module's own key names
  (``save_original_format=False``): transformers reads those too, and so can zoo.
* ``transformers-encoder``: a zoo head on a transformers encoder (``SentenceClassifier``:
  mean pooling + ``classifier``): the encoder's ``config.json`` (``AutoModel`` loads the
  encoder from the ``bert.`` keys) and zoo's weights, head included.
* ``timm``: ``timm.models.save_for_hf`` (``architecture``, ``num_classes``,
  ``num_features``, ``pretrained_cfg``), so ``timm.create_model("hf-hub:ORG/NAME",
  pretrained=True)`` loads it.
* ``mixin``: zoo's in-house and torchvision architectures, as PyTorchModelHubMixin
  writes them: ``config.json`` holds the builder's keyword arguments, ``model.safetensors``
  the state dict.

zoo's own metadata (builder, kwargs, labels, input spec, task, hashes) goes in
``zoo.json`` beside them (:mod:`zoo.publish.repo`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

WEIGHTS = "model.safetensors"
LIBRARIES = {"transformers": "transformers", "transformers-encoder": "transformers",
             "timm": "timm", "mixin": None}


def layout_of(model: Any) -> str:
    """Which layout a built model is published in (see the module docstring)."""
    tf = sys.modules.get("transformers")
    if tf is not None:
        if isinstance(model, tf.PreTrainedModel):
            return "transformers"
        if isinstance(getattr(model, "bert", None), tf.PreTrainedModel):
            return "transformers-encoder"
    if type(model).__module__.startswith("timm.") \
            and isinstance(getattr(model, "pretrained_cfg", None), dict):
        return "timm"
    return "mixin"


def has_hf_tokenizer(model: Any) -> bool:
    tf = sys.modules.get("transformers")
    tok = getattr(model, "tokenizer", None)
    return tf is not None and tok is not None and isinstance(tok, tf.PreTrainedTokenizerBase)


def _quiet():
    from zoo.loading.native_build import _quiet_transformers

    return _quiet_transformers()


def _name_classes(config: Any, labels: list[str] | None) -> None:
    if labels and getattr(config, "num_labels", None) == len(labels):
        config.id2label = dict(enumerate(labels))
        config.label2id = {v: k for k, v in config.id2label.items()}


def write(model: Any, folder: Path, layout: str, *, kwargs: dict[str, Any],
          labels: list[str] | None) -> None:
    """Write ``model`` into ``folder`` in ``layout``: config.json, model.safetensors and,
    for transformers models with one, the tokenizer's files."""
    folder.mkdir(parents=True, exist_ok=True)
    if layout == "transformers":
        undo = _quiet()
        try:
            _name_classes(model.config, labels)
            # one file: zoo.json and the card name model.safetensors
            model.save_pretrained(folder, max_shard_size="1000GB", save_original_format=False)
            if has_hf_tokenizer(model):
                model.tokenizer.save_pretrained(folder)
        finally:
            undo()
    elif layout == "transformers-encoder":
        from zoo.loading.weights import save_weights

        undo = _quiet()
        try:
            config = model.bert.config
            _name_classes(config, labels)
            config.num_labels = len(labels) if labels else config.num_labels
            config.architectures = [type(model.bert).__name__]
            config.save_pretrained(folder)
            if has_hf_tokenizer(model):
                model.tokenizer.save_pretrained(folder)
        finally:
            undo()
        save_weights(model, folder / WEIGHTS)
    elif layout == "timm":
        from timm.models import save_for_hf

        extra = {"label_names": list(labels)} if labels else None
        save_for_hf(model, str(folder), model_config=extra, safe_serialization=True)
    else:
        from zoo.loading.weights import save_weights

        save_weights(model, folder / WEIGHTS)
        (folder / "config.json").write_text(json.dumps(kwargs, indent=2, sort_keys=True) + "\n")
