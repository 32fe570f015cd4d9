"""zoo's own tasks, registered as a plugin like any other (``trylast``, so plugins win).

Each built-in task is a :class:`~zoo.tasks.TaskAdapter` subclass named after it
(``ImageGeneration`` for ``image-generation``...). Predictors are chosen by
``(family, task)`` first, then by task alone, where a family-independent interface
exists (``image-classification``: logits; ``image-generation``: ``forward(z)``). A plugin
that changes one part for its models subclasses the task's class::

    from zoo.tasks.builtin import ImageGeneration

    class VAEGeneration(ImageGeneration):
        recipe = "zoo_vae.recipe:VAERecipe"     # predictor and demo stay zoo's

Importing this module is free (every zoo command loads it): parts are lazy strings.
"""

from __future__ import annotations

from typing import Any

from zoo.hookspecs import hookimpl
from zoo.tasks import TaskAdapter

#: task, or (family, task) when families decode differently ->
#: "module:function"(model, spec, tag, inputs, **options)
PREDICTORS: dict[str | tuple[str, str], str] = {
    "image-classification": "zoo.predict:classify_image",
    "image-generation": "zoo.tasks.generation:generate",
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

_RECIPES = "zoo.finetune.recipes"


class BuiltinTask(TaskAdapter):
    """A zoo task: the predictor comes from :data:`PREDICTORS`; the demo from the
    ``zoo_demo_adapter`` hook (zoo's own demos answer it ``trylast``)."""

    def predictor_for(self, spec: Any):
        return (self.predictor or PREDICTORS.get((spec.family, self.task))
                or PREDICTORS.get(self.task))


class ImageClassification(BuiltinTask):
    task = "image-classification"
    recipe = f"{_RECIPES}.classify:Classification"


class ObjectDetection(BuiltinTask):
    task = "object-detection"
    recipe = f"{_RECIPES}.detection:ObjectDetection"


class ImageGeneration(BuiltinTask):
    task = "image-generation"
    recipe = f"{_RECIPES}.generation:ImageGeneration"


class ImageToImage(BuiltinTask):
    task = "image-to-image"
    recipe = f"{_RECIPES}.generation:ImageToImage"


class TextClassification(BuiltinTask):
    task = "text-classification"
    recipe = f"{_RECIPES}.classify:Classification"


class TokenClassification(BuiltinTask):
    task = "token-classification"
    recipe = f"{_RECIPES}.text:TokenClassification"


class TextGeneration(BuiltinTask):
    task = "text-generation"
    recipe = f"{_RECIPES}.text:TextGeneration"


class Translation(BuiltinTask):
    task = "translation"
    recipe = f"{_RECIPES}.text:Translation"


class FillMask(BuiltinTask):
    task = "fill-mask"
    # no recipe yet: masked-language-model training is not one of zoo's recipes


class FeatureExtraction(BuiltinTask):
    task = "feature-extraction"
    # an encoder is fine-tuned as a classifier of the data's labels (its head added)
    recipe = f"{_RECIPES}.classify:Classification"


class SentenceSimilarity(FeatureExtraction):
    task = "sentence-similarity"

    def predictor_for(self, spec: Any):
        return (PREDICTORS.get((spec.family, self.task))
                or PREDICTORS.get((spec.family, "feature-extraction")))


class NodeClassification(BuiltinTask):
    task = "node-classification"
    recipe = f"{_RECIPES}.graph:GraphData"


class GraphClassification(BuiltinTask):
    task = "graph-classification"
    recipe = f"{_RECIPES}.graph:GraphData"


#: task -> its built-in adapter class
TASK_ADAPTERS: dict[str, type[BuiltinTask]] = {cls.task: cls for cls in (
    ImageClassification, ObjectDetection, ImageGeneration, ImageToImage, TextClassification,
    TokenClassification, TextGeneration, Translation, FillMask, FeatureExtraction,
    SentenceSimilarity, NodeClassification, GraphClassification)}


@hookimpl(trylast=True)
def zoo_task_adapter(task):
    """zoo's adapter for a built-in task, or ``None`` for any other task."""
    cls = TASK_ADAPTERS.get(task)
    return cls() if cls is not None else None
