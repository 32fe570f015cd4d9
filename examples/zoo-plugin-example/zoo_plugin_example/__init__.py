"""An example zoo plugin: declares the "mlp" family and registers its models.

Hooks only; no torch import here, so listing stays fast. Builders are lazy strings
("zoo_plugin_example.models:tiny_mlp") that zoo imports when a model is built.
"""

from pathlib import Path

from zoo import hookimpl

CATALOG = Path(__file__).with_name("catalog.toml")


@hookimpl
def zoo_register_families(registry):
    registry.add_family("mlp", description="Multi-layer perceptrons on flattened inputs")


@hookimpl
def zoo_register_models(registry):
    # Models declared as data, like zoo's own registry.toml ...
    registry.add_catalog(CATALOG)
    # ... or from code, with the same fields.
    registry.add_model(
        name="widemlp",
        family="mlp",
        task="image-classification",
        builder="zoo_plugin_example.models:tiny_mlp",
        kwargs={"hidden": 256},
        description="A wider variant of tinymlp (random weights)",
        input={"size": [1, 8, 8]},
        tags=["small", "example"],
    )


@hookimpl
def zoo_finetune_hooks(spec):
    if spec.family != "mlp":
        return None  # not ours: let other plugins answer
    return {"head": "head", "layer_groups": ["body", "head"], "lora_targets": ["body.1"]}
