"""CNN family: convolutional image models (in-house LeNet-5, torchvision and timm builders)."""

from zoo.catalog import BUILTIN_CATALOG
from zoo.hookspecs import hookimpl


@hookimpl
def zoo_register_families(registry):
    registry.add_family(
        "cnn", description="Convolutional networks for images",
        finetune={"no_decay": ["bias", "bn", "norm"]},
    )


@hookimpl
def zoo_register_models(registry):
    registry.add_catalog(BUILTIN_CATALOG, family="cnn")
