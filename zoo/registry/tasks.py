"""The tasks zoo knows, and the catalog's check of a model's ``task`` (no torch, no plugins).

A task names what a model does; it picks the model's predictor (``zoo.predict``), its
demo and its fine-tuning recipe through the ``zoo_task_adapter`` hook (see
:mod:`zoo.tasks`). A plugin may bring a task of its own: any plain lowercase name works,
as long as the plugin answers ``zoo_task_adapter`` for it. A name one typo away from a
built-in task is refused, since it is almost always a typo that would leave the model
without predictor, demo or recipe.
"""

from __future__ import annotations

import difflib
import re

#: Built-in task -> one line on what its models take and give.
BUILTIN_TASKS: dict[str, str] = {
    "image-classification": "an image -> class probabilities",
    "object-detection": "an image -> boxes with labels and scores",
    "image-generation": "a seed (noise) -> images; forward(z) gives images in [-1, 1]",
    "image-to-image": "an image -> an image (translation, e.g. CycleGAN)",
    "text-classification": "a text -> class probabilities",
    "token-classification": "a text -> one label per token",
    "text-generation": "a prompt -> its continuation",
    "translation": "a text -> its translation (sequence to sequence)",
    "fill-mask": "a text with a mask token -> the likeliest words for it",
    "feature-extraction": "a text -> an embedding vector",
    "sentence-similarity": "two texts -> the similarity of their embeddings",
    "node-classification": "a graph -> a class per node",
    "graph-classification": "a graph -> class probabilities for the whole graph",
}

_PLAIN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def check_task(task: str, *, key: str = "task") -> str | None:
    """What is wrong with ``task`` as a catalog value, or ``None`` if it is usable."""
    if task in BUILTIN_TASKS:
        return None
    close = difflib.get_close_matches(task, list(BUILTIN_TASKS), n=1, cutoff=0.9)
    if close:
        return (f"unknown {key} '{task}'; did you mean '{close[0]}'? Tasks: "
                + ", ".join(BUILTIN_TASKS))
    if not _PLAIN.match(task):
        return (f"{key} '{task}' is not a task name; use lowercase letters, digits, '_' and "
                "'-' (built-in tasks: " + ", ".join(BUILTIN_TASKS) + ")")
    return None
