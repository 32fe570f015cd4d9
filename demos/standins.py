"""Models for demo tests and benchmarks when a shipped trained model is not available.

The demos are tested against the shipped trained models. A checkout where one is not
built yet (``zoo/trained/...`` missing) still needs a model that answers for real, so
:func:`digits_model` falls back to a LeNet-5 trained here for a few seconds on
scikit-learn's digits and saved as a model directory (the ``zoo demo DIR`` path).
"""

from __future__ import annotations

import os
from pathlib import Path

DIGITS = "lenet5.digits"


def available(name: str) -> bool:
    """Whether ``NAME.TAG`` is in the catalog with its weights on this machine."""
    from zoo.errors import ZooError

    from .gallery import _missing_weights
    from .targets import resolve

    try:
        target = resolve(name)
    except ZooError:
        return False
    return target.tag is not None and _missing_weights(target) is None


def train_digits_lenet(out: str | os.PathLike[str], *, epochs: int = 8, seed: int = 0) -> Path:
    """Train LeNet-5 on scikit-learn's digits (80% split) and save it as a model directory.

    About 0.95 accuracy on the held-out 20% after 8 epochs, in a few seconds on one core.
    """
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    from zoo.loading import build
    from zoo.registry import default_registry

    torch.manual_seed(seed)
    spec = default_registry().spec("lenet5")
    d = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(d.target))
    train = order[: int(0.8 * len(order))]
    x = torch.tensor(d.images[train] / 16.0, dtype=torch.float32).unsqueeze(1)
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    x = (x - 0.5) / 0.5
    y = torch.tensor(d.target[train])
    model = build.build(spec)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y))
        for i in range(0, len(y), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    return build.save(model, out, spec=spec, extra={
        "labels": [str(i) for i in range(10)], "tag": "digits-standin",
        "input": {"size": [1, 32, 32], "dtype": "float32", "mean": [0.5], "std": [0.5],
                  "interpolation": None, "invert": None}})


def digits_model(workdir: str | os.PathLike[str]) -> str:
    """``lenet5.digits`` when its weights are here, else a freshly trained model directory."""
    if available(DIGITS):
        return DIGITS
    out = Path(workdir) / "lenet5-digits-standin"
    if not (out / "config.json").is_file():
        train_digits_lenet(out)
    return str(out)
