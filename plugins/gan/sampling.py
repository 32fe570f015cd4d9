"""Sampling for demos and summaries: example inputs, image grids, zoo.predict functions."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from zoo.errors import UsageError
from zoo.tasks.generation import tile, to_uint8


def example_input(spec, tag=None) -> tuple:
    """Positional args of one forward pass for any gan-family model (batch of 1).

    Noise GANs get ``(z,)``; BigGAN gets ``(z, y)``; CycleGAN gets an image ``(x,)``.
    """
    from zoo.loading.build import merged_kwargs

    kw = merged_kwargs(spec, tag, {})
    g = torch.Generator().manual_seed(0)
    builder = spec.builder_path
    if builder.endswith(":cyclegan"):
        inp = spec.input_for(tag)
        size = tuple(inp.size) if inp is not None else (kw.get("channels", 3), 64, 64)
        return (torch.rand((1, *size), generator=g) * 2 - 1,)
    z = torch.randn(1, int(kw.get("latent_dim", 100)), generator=g)
    if builder.endswith(":biggan"):
        return (z, torch.zeros(1, dtype=torch.long))
    return (z,)


@torch.no_grad()
def sample_grid(model: Any, *, seed: int, n: int, class_id: int | None = None,
                truncation: float = 1.0, nrow: int | None = None,
                scale: int | None = None) -> np.ndarray:
    """Sample ``n`` images with a fixed seed and tile them into a ``uint8`` ``H x W x 3`` grid.

    Args:
        model: a gan-family model (GAN, StyleGAN, BigGAN); CycleGAN translates images, use
            :func:`translate_grid` for it.
        seed: the latents' seed; the same seed gives the same grid.
        n: number of images.
        class_id: BigGAN's class; ``None`` cycles through the classes. Refused by
            unconditional models.
        truncation: 1.0 is plain sampling. StyleGAN: psi in w space (0 gives the mean-w
            image). Other GANs: latents drawn from a normal truncated to [-2, 2] and scaled
            by ``truncation`` (BigGAN's trick; 0 gives the all-zero latent).
        nrow: images per row (default: a square-ish grid); ``scale``: pixel repeat.
    """
    if n < 1:
        raise UsageError(f"n must be at least 1, got {n}")
    if truncation < 0:
        raise UsageError(f"truncation must be >= 0, got {truncation}")
    if not hasattr(model, "latents"):
        raise UsageError(f"{type(model).__name__} does not sample from noise; "
                         "use translate_grid for image-to-image models")
    was = model.training
    model.eval()
    try:
        if hasattr(model, "num_classes"):
            if class_id is not None and not 0 <= class_id < model.num_classes:
                raise UsageError(f"class_id must be in 0..{model.num_classes - 1}, "
                                 f"got {class_id}")
            images = model.sample(n, seed=seed, truncation=truncation, class_id=class_id)
        else:
            if class_id is not None:
                raise UsageError(f"{type(model).__name__} is unconditional; drop class_id "
                                 "or use a class-conditional model such as biggan")
            images = model.sample(n, seed=seed, truncation=truncation)
    finally:
        model.train(was)
    return tile(images, nrow=nrow, scale=scale)


@torch.no_grad()
def translate_grid(model: Any, images: torch.Tensor, *, direction: str = "AB",
                   scale: int | None = None) -> np.ndarray:
    """Rows of (input, translation, reconstruction) for a CycleGAN, as a uint8 RGB grid."""
    was = model.training
    model.eval()
    try:
        out = model.translate(images, direction)
        back = model.translate(out, "BA" if direction == "AB" else "AB")
    finally:
        model.train(was)
    trip = torch.stack([images, out, back], dim=1).flatten(0, 1)
    return tile(trip, nrow=3, scale=scale)


def generate(model, spec, tag, inputs=None, *, n: int = 16, class_id: int | None = None,
             truncation: float = 1.0) -> np.ndarray:
    """zoo.predict function for "image-generation": ``inputs`` is the seed (int, default 0)."""
    seed = 0 if inputs is None else int(inputs)
    return sample_grid(model, seed=seed, n=n, class_id=class_id, truncation=truncation)


def translate_image(model, spec, tag, image, *, direction: str = "AB") -> np.ndarray:
    """zoo.predict function for "image-to-image": one image in, its translation out (uint8)."""
    from zoo.loading.preprocess import image_to_tensor

    inp = spec.input_for(tag)
    if inp is None:
        raise UsageError(f"model '{spec.name}' declares no input size")
    x = image_to_tensor(image, inp)
    with torch.no_grad():
        model.eval()
        out = model.translate(x, direction)
    return to_uint8(out)[0]
