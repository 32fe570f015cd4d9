"""The generation interface, which every ``image-generation`` model follows, and its predictor.

The interface (GANs, VAEs, any generator):

- ``model(z)`` maps latents ``z`` of shape ``[N, Z]`` to images ``[N, C, H, W]`` with
  pixels in ``[-1, 1]`` (a ``tanh`` output); ``Z`` is ``model.latent_dim`` or the
  catalog's ``input = { size = [Z] }``.
- Latents are standard normal. A class-conditional model (its tag has ``labels``, or its
  kwargs ``num_classes``) is called as ``model(z, y)`` with class ids ``y`` of shape ``[N]``.
- ``model.sample(n, seed=..., truncation=...)``, if an unconditional model has it, is
  used instead of drawing ``z`` here (style-based models with their own truncation).

``zoo.predict("NAME.TAG", seed, n=16, truncation=1.0)`` returns the samples tiled into
one ``uint8`` RGB grid (``H x W x 3``); the same seed gives the same images.
"""

from __future__ import annotations

import math
from typing import Any

from zoo.errors import UsageError


def latent_dim(model: Any, spec: Any, tag: str | None) -> int:
    """``Z`` of the generation interface: the model's ``latent_dim``, else the input size."""
    if isinstance(getattr(model, "latent_dim", None), int):
        return int(model.latent_dim)
    inp = spec.input_for(tag)
    if inp is not None and len(inp.size) == 1:
        return int(inp.size[0])
    raise UsageError(f"model '{spec.name}' does not say its latent size; give it a "
                     "latent_dim attribute or declare input = { size = [Z] } in the catalog")


def num_classes(spec: Any, tag: str | None) -> int | None:
    """Classes of a class-conditional generator (its tag's labels, or ``num_classes``)."""
    from zoo.loading.build import merged_kwargs

    pre = spec.pretrained.get(tag) if tag else None
    if pre is not None and pre.labels:
        return len(pre.labels)
    n = merged_kwargs(spec, tag, {}).get("num_classes")
    return int(n) if isinstance(n, int) else None


def sample(model: Any, spec: Any, tag: str | None, n: int, *, seed: int,
           truncation: float = 1.0, class_id: int | None = None):
    """``n`` images ``[n, C, H, W]`` in ``[-1, 1]`` drawn with ``seed`` (eval mode).

    A class-conditional model (labels or ``num_classes``) is called as ``model(z, y)``
    with ``y`` all ``class_id``, or random classes when ``class_id`` is ``None``.
    """
    import torch

    if n < 1:
        raise UsageError(f"n must be at least 1, got {n}")
    if not truncation > 0:
        raise UsageError(f"truncation must be positive, got {truncation}")
    classes = num_classes(spec, tag)
    if class_id is not None and not (classes and 0 <= class_id < classes):
        raise UsageError(f"class_id {class_id} is not a class of '{spec.name}'"
                         + (f" (0..{classes - 1})" if classes else "; it is unconditional"))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            if callable(getattr(model, "sample", None)) and not classes:
                try:
                    return model.sample(n, seed=seed, truncation=truncation)
                except TypeError:      # a sample(n, seed=...) without truncation
                    return model.sample(n, seed=seed)
            g = torch.Generator().manual_seed(seed)       # on the CPU: same images anywhere
            z = torch.randn(n, latent_dim(model, spec, tag), generator=g)
            if truncation < 1:
                z = z.clamp(-2, 2) * truncation   # the truncation trick, simply
            device = next((p.device for p in model.parameters()), z.device)
            if classes:
                y = (torch.full((n,), class_id, dtype=torch.long) if class_id is not None
                     else torch.randint(0, classes, (n,), generator=g))
                return model(z.to(device), y.to(device))
            return model(z.to(device))
    finally:
        model.train(was)


def to_uint8(images: Any):
    """Images ``[N, C, H, W]`` in ``[-1, 1]`` as ``uint8`` RGB ``[N, H, W, 3]`` (numpy)."""
    import numpy as np

    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
    arr = x.permute(0, 2, 3, 1).numpy()
    return np.repeat(arr, 3, axis=3) if arr.shape[3] == 1 else arr[..., :3]


def tile(images: Any, *, nrow: int | None = None, pad: int = 1, scale: int | None = None,
         min_side: int = 32):
    """Images ``[N, C, H, W]`` in ``[-1, 1]`` as one ``uint8`` RGB grid ``H x W x 3``:
    ``nrow`` tiles a row (default: near-square), each pixel repeated ``scale`` times
    (default: until a tile is at least ``min_side`` wide)."""
    import numpy as np

    arr = to_uint8(images)
    n, h, w, _ = arr.shape
    if scale is None:
        scale = max(1, math.ceil(min_side / max(h, w)))
    if scale > 1:
        arr = arr.repeat(scale, axis=1).repeat(scale, axis=2)
        h, w = h * scale, w * scale
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 64, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h,
            pad + c * (w + pad):pad + c * (w + pad) + w] = arr[i]
    return out


def generate(model: Any, spec: Any, tag: str | None, inputs: Any = None, *, n: int = 16,
             truncation: float = 1.0, class_id: int | None = None):
    """``zoo.predict`` for ``image-generation``: ``inputs`` is the seed (default 0)."""
    try:
        seed = 0 if inputs is None else int(inputs)
    except (TypeError, ValueError):
        raise UsageError(f"image generation takes a seed (a whole number), got "
                         f"{inputs!r}") from None
    return tile(sample(model, spec, tag, int(n), seed=seed, truncation=float(truncation),
                       class_id=class_id))
