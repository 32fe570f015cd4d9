"""GAN family: generative adversarial networks (generator and discriminator in one module)."""

from zoo.catalog import BUILTIN_CATALOG
from zoo.hookspecs import hookimpl


@hookimpl
def zoo_register_families(registry):
    registry.add_family(
        "gan", description="Generative adversarial networks; forward(z) samples images",
        finetune={"head": "discriminator", "layer_groups": ["generator", "discriminator"]},
    )


@hookimpl
def zoo_register_models(registry):
    registry.add_catalog(BUILTIN_CATALOG, family="gan")
