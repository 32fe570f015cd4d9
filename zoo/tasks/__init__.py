"""Task adapters: what a task brings to ``zoo.predict``, ``zoo demo`` and ``zoo finetune``.

A model's task (``image-generation``, ``object-detection``...) decides how zoo runs it on
one input, which demo it gets and how it is fine-tuned. These three parts travel together
as one :class:`TaskAdapter`, chosen per model by the firstresult hook
``zoo_task_adapter(task, spec)``. zoo's own tasks are answered by the built-in plugin
:mod:`zoo.tasks.builtin`, registered ``trylast``: a plugin adds a task, or takes one over
for its own models, by answering first.

Nothing here imports torch: parts are named by lazy ``"module:name"`` strings and
imported when used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zoo.errors import UsageError

__all__ = ["TaskAdapter", "adapter_for", "demo_for", "predictor_for", "recipe_for"]

Part = str | Callable[..., Any] | type | None


class TaskAdapter:
    """One task's predictor, demo and fine-tuning recipe; subclass it, or pass the parts.

    Each part is a lazy ``"module:name"`` string, the object itself, or ``None`` (this
    task has no such part). Override ``predictor_for`` / ``demo_for`` / ``recipe_for``
    to choose by model (its family, its kwargs).

    - ``predictor``: ``fn(model, spec, tag, inputs, **options)``, what ``zoo.predict(NAME,
      inputs, **options)`` returns; ``model`` is built once per process, in eval mode.
    - ``demo``: a :class:`zoo.demos.base.Adapter` subclass (instantiated without
      arguments). ``None``: the ``zoo_demo_adapter`` hook is asked for the task.
    - ``recipe``: a :class:`zoo.finetune.recipes.Recipe` subclass (instantiated without
      arguments): data loading, loss and metric for ``zoo finetune``.

    Example::

        class Denoising(TaskAdapter):
            task = "image-denoising"
            predictor = "zoo_denoise.tasks:denoise"
            demo = "zoo_denoise.demo:DenoiseDemo"
            recipe = "zoo_denoise.recipe:DenoiseRecipe"
    """

    task: str = ""
    predictor: Part = None
    demo: Part = None
    recipe: Part = None

    def __init__(self, task: str | None = None, *, predictor: Part = None, demo: Part = None,
                 recipe: Part = None) -> None:
        if task is not None:
            self.task = task
        for name, value in (("predictor", predictor), ("demo", demo), ("recipe", recipe)):
            if value is not None:
                setattr(self, name, value)

    def predictor_for(self, spec: Any) -> Part:
        """The predictor for this model (default: :attr:`predictor`)."""
        return self.predictor

    def demo_for(self, spec: Any) -> Part:
        """The demo adapter class for this model (default: :attr:`demo`)."""
        return self.demo

    def recipe_for(self, spec: Any) -> Part:
        """The fine-tuning recipe class for this model (default: :attr:`recipe`)."""
        return self.recipe

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r})"


def _load(part: Part, what: str) -> Any:
    if isinstance(part, str):
        from zoo.registry.lazy import import_object

        return import_object(part, what=what)
    return part


def adapter_for(spec: Any, task: str | None = None, tag: str | None = None, *,
                required: bool = True) -> tuple[TaskAdapter | None, str | None]:
    """``(adapter, plugin)`` claiming ``task`` (default: the model's) for ``spec``;
    ``(None, None)`` when no plugin does and not ``required``.

    Raises:
        UsageError: no plugin handles the task, naming the task and how to add it.
        PluginError: a plugin's hook raised or answered with something else.
    """
    from zoo.registry.plugins import get_plugins

    task = task or spec.task_for(tag)
    adapter, plugin = get_plugins().first_result("zoo_task_adapter", task=task, spec=spec)
    if adapter is None and required:
        from zoo.registry.tasks import BUILTIN_TASKS

        raise UsageError(f"model '{spec.name}': no plugin handles task '{task}'; zoo's "
                         f"tasks are {', '.join(BUILTIN_TASKS)} (a plugin adds one with "
                         "the zoo_task_adapter hook)")
    return adapter, plugin


def predictor_for(spec: Any, task: str | None = None, tag: str | None = None
                  ) -> Callable[..., Any] | None:
    """The predictor ``fn(model, spec, tag, inputs, **options)`` for the model, or ``None``."""
    adapter, _ = adapter_for(spec, task, tag)
    task = task or spec.task_for(tag)
    return _load(adapter.predictor_for(spec), f"predictor for '{task}'")


def demo_for(spec: Any, task: str) -> Any:
    """A fresh, unloaded demo adapter for ``task`` of this model, or ``None``."""
    from zoo.registry.plugins import get_plugins

    # A task no adapter claims may still have a demo: zoo_demo_adapter alone adds one.
    adapter, _ = adapter_for(spec, task, required=False)
    cls = _load(adapter.demo_for(spec), f"demo adapter for '{task}'") if adapter else None
    if cls is not None:
        return cls() if isinstance(cls, type) else cls
    found, _plugin = get_plugins().first_result("zoo_demo_adapter", task=task)
    return found


def recipe_for(spec: Any, task: str | None = None, tag: str | None = None) -> Any:
    """A fresh fine-tuning recipe for the model's task, or ``None`` if it has none."""
    adapter, _ = adapter_for(spec, task, tag)
    task = task or spec.task_for(tag)
    cls = _load(adapter.recipe_for(spec), f"fine-tuning recipe for '{task}'")
    return cls() if isinstance(cls, type) else cls
