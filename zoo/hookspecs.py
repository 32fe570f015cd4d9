"""The plugin author's contract: every hook zoo calls, with what it passes and expects.

A plugin is a module (or object) with functions named like these hooks and marked with
``@zoo.hookimpl``. Declare it under ``[project.entry-points.zoo]`` and zoo loads it on its
own: an import error or an exception in one plugin is reported, and the rest keep working.
Hooks are called with keyword arguments; an implementation may accept fewer arguments
than the spec lists. Arguments are only ever added here, never renamed or removed.
"""

from __future__ import annotations

import pluggy

PROJECT = "zoo"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def zoo_register_families(registry):
    """Declare architecture families (``registry.add_family(...)``) and their defaults.

    Called for every plugin before any model is registered.

    :param registry: the :class:`zoo.registry.Registry` being filled.
    :return: ignored.
    """


@hookspec
def zoo_register_models(registry):
    """Add models: ``registry.add_catalog(path)`` for a TOML catalog the plugin ships,
    or ``registry.add_model(...)`` from code.

    Keep builders lazy ("module:callable" strings) so that listing stays fast. A model
    whose name is already taken is refused and reported; it never overwrites.

    :param registry: the :class:`zoo.registry.Registry` being filled.
    :return: ignored.
    """


@hookspec(firstresult=True)
def zoo_load_pretrained(spec, model, source, tag):
    """Load the weights at ``source`` into ``model`` if this plugin handles its URI scheme.

    firstresult: the first plugin to return something other than ``None`` wins. Raise
    :class:`zoo.errors.WeightsError` with the file and what differs when weights are bad.

    :param spec: the :class:`zoo.registry.spec.ModelSpec` being built.
    :param model: the freshly built ``nn.Module`` (random weights).
    :param source: the pretrained source URI, e.g. ``"package:mypkg/weights/x.safetensors"``.
    :param tag: the :class:`zoo.registry.spec.PretrainedSpec` of the requested tag.
    :return: the loaded model (usually ``model`` itself), or ``None`` if the scheme is not
        this plugin's.
    """


@hookspec
def zoo_finetune_hooks(spec):
    """Tell fine-tuning how to treat a model: where its head is, what to freeze, LoRA targets.

    Keys: ``head`` (module name of the classifier), ``backbone`` (module name of the
    part before the head), ``lora_targets`` (module names or patterns),
    ``target_parameters`` (parameter names for peft's LoRA on fused weights: RNNs, GNN
    convs), ``layer_groups`` (ordered name prefixes, input side first, for freezing and
    layer-wise learning rates), ``no_decay`` (parameter name patterns), ``notes`` (one
    paragraph for users). The catalog's ``finetune`` table wins over hook answers, key by key.

    :param spec: the :class:`zoo.registry.spec.ModelSpec` being fine-tuned.
    :return: a dict of the keys above, or ``None`` if the model is not this plugin's.
    """


@hookspec(firstresult=True)
def zoo_task_adapter(task, spec):
    """Claim a task for a model: what ``zoo.predict``, ``zoo demo`` and ``zoo finetune`` do.

    firstresult: the first non-``None`` answer is used; zoo's own tasks are answered
    ``trylast``, so a plugin can add a task or take one over for its models (subclass the
    built-in adapter, e.g. ``zoo.tasks.builtin.ImageGeneration``, to change one part).

    :param task: the task name, e.g. ``"image-generation"`` (the model's, or its tag's).
    :param spec: the :class:`zoo.registry.spec.ModelSpec` of the model.
    :return: a :class:`zoo.tasks.TaskAdapter` (its predictor, demo and fine-tuning recipe),
        or ``None`` if this plugin does not handle ``task`` for this model.
    """


@hookspec(firstresult=True)
def zoo_demo_adapter(task):
    """Give the Gradio adapter for a demo task (inputs, outputs, pre/post-processing).

    Asked when the model's task adapter names no demo of its own. firstresult: the first
    non-``None`` answer is used, so a plugin can add a demo or override a built-in one
    (built-ins are registered ``trylast``).

    :param task: the demo task name, e.g. ``"image-classification"``.
    :return: an adapter object (the contract is ``zoo.demos.base``), or ``None`` if the
        task is not this plugin's.
    """
