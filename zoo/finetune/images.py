"""Images for fine-tuning through the model's one preprocessing
(:func:`zoo.loading.preprocess.model_input` + ``image_to_tensor``), the function
``zoo.predict``, the demos and an exported Space apply to uploads."""

from __future__ import annotations

from collections.abc import Callable

import torch

from zoo.errors import UsageError
from zoo.registry.spec import InputSpec


def image_spec(spec, tag) -> InputSpec:
    """The model's settled input spec (:func:`zoo.loading.preprocess.model_input`)."""
    from zoo.loading.preprocess import model_input

    inp = model_input(spec, tag)
    if inp is None or len(inp.size) != 3:
        raise UsageError(f"model '{spec.name}' declares no image input size [C, H, W]; "
                         "it cannot be fine-tuned on images")
    return inp


def _to_pil(x: torch.Tensor) -> list:
    """``[N, C, h, w]`` floats in 0..1 -> 8-bit PIL images, as a user's files would be."""
    from PIL import Image

    arr = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a[:, :, :3].copy())
            for a in arr]


#: built-in sample sets: each image is preprocessed once per process and input spec
_ENCODED: dict[tuple[str, InputSpec], dict[int, torch.Tensor]] = {}


class Encoded:
    """Rows ``index`` of a built-in set (``load()``: all its images, 0..1) through
    :func:`encode_images`, computed when first needed and kept: runs in one process share
    them, and ``--limit`` computes only its own rows."""

    def __init__(self, name: str, inp: InputSpec, index: torch.Tensor,
                 load: Callable[[], torch.Tensor]):
        self.name, self.inp, self.index, self.load = name, inp, index, load

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, idx) -> Encoded:
        return Encoded(self.name, self.inp, self.index[torch.as_tensor(idx, dtype=torch.long)],
                       self.load)

    def tensor(self) -> torch.Tensor:
        rows = _ENCODED.setdefault((self.name, self.inp), {})
        if len(_ENCODED) > 4:
            _ENCODED.pop(next(iter(_ENCODED)))
        todo = [i for i in self.index.tolist() if i not in rows]
        if todo:
            x = self.load()
            rows.update(zip(todo, encode_images(x[todo], self.inp), strict=True))
        if not len(self.index):
            return torch.empty(0, *self.inp.size)
        return torch.stack([rows[i] for i in self.index.tolist()])


def encode_images(samples, inp: InputSpec) -> torch.Tensor:
    """Images (a ``[N, C, h, w]`` tensor in 0..1, or files) through the model's one
    preprocessing, the function ``zoo.predict`` and the demos apply to uploads."""
    from zoo.loading.preprocess import image_to_tensor

    items = _to_pil(samples) if isinstance(samples, torch.Tensor) else samples
    if not len(items):
        return torch.empty(0, *inp.size)
    return torch.cat([image_to_tensor(s, inp) for s in items])
