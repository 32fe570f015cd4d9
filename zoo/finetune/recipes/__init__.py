"""Fine-tuning recipes: how each task trains (its data, its loss, its metric).

A model's task adapter (:mod:`zoo.tasks`) names its recipe; ``zoo finetune`` then runs
it. zoo's recipes, one module per task family:

- :mod:`~zoo.finetune.recipes.classify`: image, text and encoder classification (the
  classification run: heads, LoRA, distillation...).
- :mod:`~zoo.finetune.recipes.graph`: node and graph classification on a graph file.
- :mod:`~zoo.finetune.recipes.generation`: generative models (GAN, DCGAN, a plugin's
  VAE) on an image folder; CycleGAN on two folders.
- :mod:`~zoo.finetune.recipes.detection`: detectors (YOLO, DETR) on COCO-style boxes.
- :mod:`~zoo.finetune.recipes.text`: translation on text pairs, text generation on
  lines or prompt/response pairs (SFT), token tagging on tagged sentences.

A plugin's recipe subclasses :class:`Recipe` (see its docstring and docs/plugins.md).
"""

from __future__ import annotations

import os
from typing import Any

from zoo.errors import UsageError
from zoo.finetune.recipes.base import DataOptions, Recipe

__all__ = ["DataOptions", "Recipe", "recipe_of"]


def recipe_of(model: str | os.PathLike[str], technique: str = "full") -> Recipe:
    """The recipe that fine-tunes ``model`` (``NAME[.TAG]`` or a saved directory).

    ``technique="sft"`` is text generation's recipe. A model whose task no plugin claims
    is trained as a classifier, as zoo always did.

    Raises:
        UsageError: the model's task has no fine-tuning recipe.
        UnknownModelError: no such model.
    """
    from zoo.finetune.recipes.classify import Classification

    if technique == "sft":
        from zoo.finetune.recipes.text import TextGeneration

        return TextGeneration()
    spec, tag = _spec_of(model)
    if spec is None:
        return Classification()        # a missing directory: the run says so, as before
    from zoo.tasks import adapter_for, recipe_for

    task = spec.task_for(tag)
    adapter, _ = adapter_for(spec, task, required=False)
    if adapter is None:
        return Classification()
    recipe = recipe_for(spec, task)
    if recipe is None:
        raise UsageError(f"model '{spec.name}': its task '{task}' has no fine-tuning recipe; "
                         "a plugin adds one with the zoo_task_adapter hook")
    if not callable(getattr(recipe, "run", None)) or not hasattr(recipe, "classifier"):
        raise UsageError(f"model '{spec.name}': the recipe for task '{task}' is a "
                         f"{type(recipe).__name__}, not a zoo.finetune.recipes.Recipe")
    return recipe


def _spec_of(model: str | os.PathLike[str]) -> tuple[Any, str | None]:
    """``(spec, tag)`` of a catalog name or a saved directory (``(None, None)``: a
    directory that is not there, or a Hub repo; the run reads or reports it)."""
    from pathlib import Path

    from zoo.api import _looks_like_dir
    from zoo.api import spec as resolve

    text = os.fspath(model)
    if text.startswith("hf-hub:"):
        return None, None              # a Hub repo: the run reads its config
    if _looks_like_dir(text):
        if not Path(text).is_dir():
            return None, None
        from zoo.loading.build import read_config
        from zoo.registry import default_registry

        name = read_config(text).get("name")
        reg = default_registry()
        return (reg.spec(name), None) if isinstance(name, str) and name in reg else (None, None)
    return resolve(text)
