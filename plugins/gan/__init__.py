"""GAN family: generative adversarial networks (generator and discriminator in one module).

Architectures: ``nets`` (MLP GAN, DCGAN), ``stylegan``, ``biggan``, ``cyclegan``.
Sampling for demos: ``zoo.plugins.gan.sampling:sample_grid``.
"""

from zoo.hookspecs import hookimpl
from zoo.registry.catalog import BUILTIN_CATALOG


@hookimpl
def zoo_register_families(registry):
    registry.add_family(
        "gan", description="Generative adversarial networks; forward(z) samples images "
                           "(biggan: forward(z, y); cyclegan: forward(x) translates A to B)",
        # BigGAN needs a class and CycleGAN an image, so the family picks the args per model.
        example_input="zoo.plugins.gan.sampling:example_input",
        finetune={"head": "discriminator", "layer_groups": ["generator", "discriminator"]},
    )


@hookimpl
def zoo_register_models(registry):
    registry.add_catalog(BUILTIN_CATALOG, family="gan")
