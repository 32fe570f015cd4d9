"""Train ``gan.digits``: the MLP GAN on scikit-learn's 8x8 digits, scaled to [-1, 1].

Deterministic (fixed seeds). Prints the sample-quality figures (Frechet distance in PCA-20
digit space, classifier confidence, effective number of classes) of the trained
generator, of the same architecture at random init and of real held-out digits; writes
``zoo/trained/gan-digits.safetensors`` and ``docs/images/gan-digits.png``; says which
catalog numbers to update.

    OMP_NUM_THREADS=1 python scripts/train_gan_digits.py [--epochs N] [--subset N] [--out DIR]
"""

from __future__ import annotations

from zoo.plugins.gan.nets import mlp_gan
from zoo.plugins.gan.training import run_digits_script

#: builder kwargs of gan.digits (the catalog's [models.gan.pretrained.digits] kwargs)
KWARGS = {"latent_dim": 32, "image_size": 8, "channels": 1, "hidden": 256}


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate and save ``gan.digits``; return the figures (also printed)."""
    return run_digits_script(argv, name="gan-digits", catalog="gan", builder=mlp_gan,
                             kwargs=KWARGS, epochs=300, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
