"""Turn what users upload into what a model's input spec declares.

Users draw and photograph: dark ink on light paper as often as light on dark, off
centre, any size and mode. For models trained on centred light-on-dark images (the
digits models), :func:`image_to_tensor` inverts by the border's brightness, crops to the
ink's bounding box and pads to a square before resizing, so the aspect ratio survives.

One function per model: :func:`model_input` settles a model's input spec (including
whether it centres ink) and :func:`image_to_tensor` applies it. Fine-tuning feeds every
training and validation image through them and saves the settled spec in the model's
``config.json``; ``zoo.predict``, ``zoo demo`` and an exported Space read it back, so
a model is served exactly as it was trained.
"""

from __future__ import annotations

import os
from typing import Any

from zoo.errors import UsageError
from zoo.registry.spec import InputSpec

MAX_PIXELS = 50_000_000      # decoding more takes seconds and gigabytes (a 7000 x 7000 photo)


def wants_center(spec, tag: str | None = None) -> bool:
    """Whether ``spec`` (``NAME[.TAG]``) centres ink: the input spec's ``center`` when it
    says; else a model that declares an ink polarity (``invert``) or a trained digit model
    (``digits`` in its tags, tag or data set). An architecture (no tag) has no training
    data to match, so it takes images as they are."""
    inp = spec.input_for(tag)
    if inp is not None and inp.center is not None:
        return bool(inp.center)
    if inp is not None and inp.invert is not None:
        return True
    if not tag:
        return False
    pre = spec.pretrained.get(tag)
    return bool("digits" in spec.tags or tag.endswith("digits")
                or (pre is not None and "digits" in (pre.dataset or "")))


def model_input(spec, tag: str | None = None) -> InputSpec | None:
    """The input spec of ``NAME[.TAG]`` with ``center`` settled (True/False, never None)
    for image models: what training, prediction and demos all feed the model."""
    from dataclasses import replace

    inp = spec.input_for(tag)
    if inp is None or len(inp.size) != 3 or inp.center is not None:
        return inp
    center = wants_center(spec, tag) and inp.size[0] == 1
    return replace(inp, center=center)


def load_image(image: Any):
    """A PIL image from a path, PIL image, or H x W (x C) uint8/float array."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, Image.Image):
        return image
    if isinstance(image, str | os.PathLike):
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(image) as im:
                    # the header gives the size: refuse before decoding a bomb (a small
                    # PNG that inflates to gigabytes)
                    w, h = im.size
                    if w * h > MAX_PIXELS:
                        raise UsageError(f"{image}: {w} x {h} pixels, more than an image zoo "
                                         f"reads ({MAX_PIXELS // 1_000_000} megapixels); "
                                         "shrink it or leave it out")
                    im.load()
                    return im.copy()
        except Image.DecompressionBombError:
            raise UsageError(f"{image}: too many pixels to decode safely; shrink it or leave "
                             "it out") from None
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise UsageError(f"{image}: not a readable image ({e})") from None
    import numpy as np

    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise UsageError(f"expected an H x W or H x W x C image array, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return Image.fromarray(arr)


def _flatten_alpha(img):
    from PIL import Image

    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        # Transparent pixels become the colour a drawing app would show: white paper.
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img


def center_ink(grey, *, invert: bool | None):
    """Light-on-dark, cropped to the ink, padded square (greyscale PIL in and out).

    ``invert=None`` decides by the border: a bright border means dark ink on paper.
    """
    import numpy as np
    from PIL import Image

    a = np.asarray(grey, dtype=np.float32)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if invert is None:
        invert = float(np.median(border)) > 127
    if invert:
        a = 255.0 - a
    bg = float(np.median(np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])))
    ink = a > bg + 0.25 * max(a.max() - bg, 1.0)
    if ink.any() and a.max() - bg > 20:
        rows, cols = np.where(ink.any(1))[0], np.where(ink.any(0))[0]
        a = a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    a = np.clip(a - bg, 0, None)
    if a.max() > 0:
        a = a * (255.0 / a.max())
    h, w = a.shape
    side = int(max(h, w) * 1.25) + 1   # a margin like the training digits'
    canvas = np.zeros((side, side), dtype=np.float32)
    y, x = (side - h) // 2, (side - w) // 2
    canvas[y:y + h, x:x + w] = a
    return Image.fromarray(canvas.astype(np.uint8), mode="L")


def to_8bit(img):
    """``img`` with 16/32-bit integer and float greyscale modes mapped to 8-bit ``L``.

    16-bit images are scaled by their full range (65535 is white), float images in
    [0, 1] by 255, anything else by its own min and max; NaN and infinities become 0.
    Other modes come back unchanged.
    """
    import numpy as np
    from PIL import Image

    if not (img.mode.startswith("I") or img.mode == "F"):
        return img
    a = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if img.mode.startswith("I;16"):
        a = a / 65535.0 * 255.0
    elif img.mode == "F" and lo >= 0.0 and hi <= 1.0:
        a = a * 255.0
    elif lo < 0.0 or hi > 255.0:
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return Image.fromarray(np.clip(a.round(), 0, 255).astype(np.uint8))


def image_to_tensor(image: Any, spec: InputSpec, *, center: bool | None = None):
    """A normalised ``1 x C x H x W`` float tensor for ``spec`` from any image.

    Args:
        image: path, PIL image or array; any mode (RGBA, P, L, I;16...) and size.
        spec: the model's input spec (size ``[C, H, W]``, mean, std, ``center``); pass
            :func:`model_input`'s for a model, so that it is fed as it was trained.
        center: invert by the border, crop to the ink and pad square (digit models);
            ``None``: as ``spec.center`` says.
    """
    import numpy as np
    import torch
    from PIL import Image

    if len(spec.size) != 3:
        raise UsageError(f"input spec {list(spec.size)} is not an image (C, H, W)")
    c, h, w = spec.size
    img = _flatten_alpha(load_image(image))
    if img.width < 1 or img.height < 1:
        raise UsageError("the image is empty")
    img = to_8bit(img)   # convert("L") would clip 16-bit and float images to white
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB") if img.mode != "1" else img.convert("L")
    img = img.convert("L") if c == 1 else img.convert("RGB")
    if center is None:
        center = bool(spec.center)
    if center:
        if c != 1:
            raise UsageError("ink centring works on greyscale models only")
        img = center_ink(img, invert=spec.invert)
    method = {"bicubic": Image.BICUBIC, "nearest": Image.NEAREST}.get(
        spec.interpolation or "", Image.BILINEAR)
    img = img.resize((w, h), method)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    t = torch.from_numpy(arr)
    t = t.unsqueeze(0) if c == 1 else t.permute(2, 0, 1)
    if spec.mean is not None and spec.std is not None:
        mean = torch.tensor(spec.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(spec.std, dtype=torch.float32).view(-1, 1, 1)
        t = (t - mean) / std
    return t.unsqueeze(0).contiguous()
