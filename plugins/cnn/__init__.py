"""CNN family: convolutional image models (in-house LeNet-5 and YOLO, torchvision builders),
plus the ``timm/`` and ``torchvision/`` pass-through namespaces.

Hooks only: nothing here imports torch, timm or torchvision; architectures live in the
submodules the catalog's builder strings name (``lenet``, ``yolo``, ``passthrough``).
"""

from zoo.hookspecs import hookimpl
from zoo.registry.catalog import BUILTIN_CATALOG


@hookimpl
def zoo_register_families(registry):
    registry.add_family(
        "cnn", description="Convolutional networks for images",
        finetune={"no_decay": ["bias", "bn", "norm"]},
    )


@hookimpl
def zoo_register_models(registry):
    registry.add_catalog(BUILTIN_CATALOG, family="cnn")
    registry.add_namespace(
        "timm", resolve="zoo.plugins.cnn.passthrough:timm_spec",
        names="zoo.plugins.cnn.passthrough:timm_names",
        description="every timm model as timm/NAME (timm.create_model); "
                    "pretrained tags as timm/NAME.TAG",
    )
    registry.add_namespace(
        "torchvision", resolve="zoo.plugins.cnn.passthrough:torchvision_spec",
        names="zoo.plugins.cnn.passthrough:torchvision_names",
        description="every torchvision model as torchvision/NAME (torchvision.models.get_model); "
                    "weights as torchvision/NAME.WEIGHTS (e.g. .imagenet1k_v1)",
    )
