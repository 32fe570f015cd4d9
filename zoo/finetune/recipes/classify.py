"""Classification (images, texts, encoders' labels): zoo's classification run trains it.

That run (:mod:`zoo.finetune.api`) fits the head to the data's classes and offers every
technique (full, freeze, feature-extract, LoRA, distillation); this recipe only reads the
data (:func:`zoo.finetune.data.prepare`: sample sets, image folders, CSV/JSONL texts).
"""

from __future__ import annotations

from typing import Any

from zoo.finetune.recipes.base import DataOptions, Recipe


class Classification(Recipe):
    """Class labels per sample; cross-entropy; accuracy and macro-F1."""

    task = "classification"
    classifier = True
    metric = "accuracy"
    modes = {"accuracy": "max", "macro_f1": "max", "loss": "min"}
    techniques = ("full", "freeze", "feature-extract", "lora", "distill")
    data_help = ("digits, shapes, sentiment, karate, an image folder (one sub-folder per "
                 "class) or a .csv/.jsonl file of texts and labels")

    def prepare(self, data: Any, loaded: Any, options: DataOptions):
        from zoo.finetune.data import prepare

        return prepare(data, loaded.model, loaded.spec, loaded.tag, val_data=options.val_data,
                       val_fraction=options.val_fraction, limit=options.limit,
                       val_limit=options.val_limit, max_length=options.max_length,
                       text_column=options.text_column, label_column=options.label_column)
