"""Built-in demo adapters, one ``zoo_demo_adapter`` answer per task (registered trylast).

Importing this module is free (it is a plugin that every ``zoo`` command loads): the
adapter classes and gradio are imported only when a demo is made. A plugin adds a task,
or replaces a built-in one, by answering ``zoo_demo_adapter`` with an object following
the contract in :mod:`zoo.demos.base` (subclass :class:`zoo.demos.base.Adapter`).
"""

from zoo.hookspecs import hookimpl

#: demo task -> "module:class" of its adapter
ADAPTERS: dict[str, str] = {
    "image-classification": "zoo.demos.tasks_image:ImageClassification",
    "object-detection": "zoo.demos.tasks_image:ObjectDetection",
    "image-generation": "zoo.demos.tasks_image:ImageGeneration",
    "image-to-image": "zoo.demos.tasks_image:ImageToImage",
    "text-classification": "zoo.demos.tasks_text:TextClassification",
    "text-generation": "zoo.demos.tasks_text:TextGeneration",
    "translation": "zoo.demos.tasks_text:Translation",
    "fill-mask": "zoo.demos.tasks_text:FillMask",
    "feature-extraction": "zoo.demos.tasks_text:FeatureExtraction",
    "sentence-similarity": "zoo.demos.tasks_text:FeatureExtraction",
    "node-classification": "zoo.demos.tasks_graph:NodeClassification",
    "graph-classification": "zoo.demos.tasks_graph:GraphClassification",
}


@hookimpl(trylast=True)
def zoo_demo_adapter(task):
    """A fresh, unloaded adapter for ``task``, or ``None`` if zoo has no built-in one."""
    path = ADAPTERS.get(task)
    if path is None:
        return None
    from zoo.loading.build import import_object

    return import_object(path, what=f"demo adapter for '{task}'")()
