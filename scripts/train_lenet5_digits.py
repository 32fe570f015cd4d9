"""Train LeNet-5 on scikit-learn's 8x8 digits and write ``zoo/trained/lenet5-digits.*``.

Training images go through exactly the preprocessing users' uploads get
(``zoo.loading.preprocess.image_to_tensor(img, input_spec, center=True)``: invert by the border,
crop to the ink, pad square, resize to 32 x 32), so what the model learns is what
``zoo.predict("lenet5.digits", ...)`` feeds it. Light augmentation (upscaling with
different resamplers, small rotations, scales, shears, thicker or thinner strokes)
makes drawn and photographed digits work, not just the 8 x 8 originals.

Held out: a stratified 20 % split (seed 0), evaluated without augmentation, and the
same digits rendered as "uploads" (upscaled, dark-on-light and light-on-dark,
off-centre on a larger canvas). Single-threaded on purpose (shared CPUs):

    OMP_NUM_THREADS=1 python scripts/train_lenet5_digits.py

Prints the metrics and the catalog lines to update (``sha256`` and ``metrics`` of
``[models.lenet5.pretrained.digits]``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from zoo.loading.preprocess import image_to_tensor
from zoo.registry.spec import InputSpec
from zoo.shipping import run_script, ship

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "zoo" / "trained" / "lenet5-digits.safetensors"
#: The catalog's input spec of lenet5 (and of its digits tag).
INPUT = InputSpec(size=(1, 32, 32), mean=(0.5,), std=(0.5,))
#: builder kwargs of the digits tag
KWARGS = {"num_classes": 10, "in_channels": 1}
_RESAMPLERS = (Image.NEAREST, Image.BILINEAR, Image.BICUBIC)


def digit_image(d: np.ndarray) -> Image.Image:
    """An 8x8 sklearn digit (values 0..16, light ink on dark) as a uint8 greyscale image."""
    return Image.fromarray(np.clip(d * (255.0 / 16.0), 0, 255).astype(np.uint8), mode="L")


def split(seed: int = 0):
    """The digits and the stratified 80/20 split: ``(X_train, X_test, y_train, y_test)``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    return train_test_split(digits.images, digits.target, test_size=0.2,
                            stratify=digits.target, random_state=seed)


def augment(d: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """One random variant of a digit: upscaled, rotated, scaled, sheared, restroked."""
    side = int(rng.integers(16, 72))
    img = digit_image(d).resize((side, side), _RESAMPLERS[int(rng.integers(0, 3))])
    if rng.random() < 0.4:   # drawn strokes are often thicker or thinner than the scans'
        size = 3 if side < 40 else 5
        img = img.filter(ImageFilter.MaxFilter(size) if rng.random() < 0.6
                         else ImageFilter.MinFilter(3))
    sx, sy = rng.uniform(0.85, 1.15, 2)
    shear = rng.uniform(-0.15, 0.15)
    angle = np.deg2rad(rng.uniform(-12, 12))
    cos, sin = np.cos(angle), np.sin(angle)
    # Inverse affine map (output -> input pixel) about the image centre.
    a = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1, shear], [0, 1]]) \
        @ np.diag([sx, sy])
    inv = np.linalg.inv(a)
    c = np.array([side / 2, side / 2])
    offset = c - inv @ c
    img = img.transform((side, side), Image.AFFINE,
                        (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1]),
                        resample=Image.BILINEAR, fillcolor=0)
    if rng.random() < 0.5:   # uploads come in both polarities; preprocessing must undo it
        img = Image.fromarray(255 - np.asarray(img))
    return img


def upload_image(d: np.ndarray, *, dark_on_light: bool, rng: np.random.Generator,
                 side: int = 140) -> Image.Image:
    """A digit as a user would upload it: upscaled, on a larger canvas, off centre."""
    glyph = np.asarray(digit_image(d).resize((side, side), Image.BILINEAR), dtype=np.float32)
    h, w = int(side * rng.uniform(1.4, 2.0)), int(side * rng.uniform(1.4, 2.2))
    canvas = np.zeros((h, w), dtype=np.float32)
    y, x = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
    canvas[y:y + side, x:x + side] = glyph
    if dark_on_light:
        canvas = 255.0 - canvas
    return Image.fromarray(canvas.astype(np.uint8), mode="L").convert("RGB")


def to_tensors(images) -> torch.Tensor:
    """Preprocess PIL images exactly as ``zoo.predict`` does; stack into ``[N, 1, 32, 32]``."""
    return torch.cat([image_to_tensor(img, INPUT, center=True) for img in images])


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``x`` that ``model`` classifies as ``y``."""
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


def main(out: str | Path = DEFAULT_OUT, *, epochs: int = 20, copies: int = 8,
         limit: int | None = None, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
         verbose: bool = True) -> dict:
    """Train, evaluate and save; return the metrics (``accuracy`` on the held-out split).

    Args:
        copies: augmented variants per training digit (plus the digit itself).
        limit: train on the first ``limit`` training digits only (smoke tests).
    """
    from zoo.plugins.cnn.lenet import lenet5

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    start = time.time()
    x_train, x_test, y_train, y_test = split(seed)
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    images, labels = [], []
    for d, label in zip(x_train, y_train, strict=True):
        images.append(digit_image(d))
        images += [augment(d, rng) for _ in range(copies)]
        labels += [int(label)] * (copies + 1)
    xt, yt = to_tensors(images), torch.tensor(labels)
    xv, yv = to_tensors([digit_image(d) for d in x_test]), torch.from_numpy(y_test).long()
    urng = np.random.default_rng(seed + 1)
    xu = to_tensors([upload_image(d, dark_on_light=bool(i % 2), rng=urng)
                     for i, d in enumerate(x_test)])

    model = lenet5(**KWARGS)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(xt) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr * 3, total_steps=steps)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(xt))
        total = 0.0
        for s in range(0, len(xt), batch_size):
            idx = order[s:s + batch_size]
            loss = loss_fn(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if verbose:
            print(f"epoch {epoch + 1:2d}/{epochs}  loss {total / len(xt):.4f}  "
                  f"held-out {accuracy(model, xv, yv):.4f}  {time.time() - start:4.0f}s",
                  flush=True)
    model.eval()
    metrics = {"accuracy": round(accuracy(model, xv, yv), 4),
               "upload-accuracy": round(accuracy(model, xu, yv), 4)}
    record = {"seconds": round(time.time() - start, 1),
              "config": {"epochs": epochs, "copies": copies, "train_size": len(x_train),
                         "test_size": len(x_test), "batch_size": batch_size, "lr": lr,
                         "seed": seed}}
    shipped = ship(model, out, name="lenet5", tag="digits", kwargs=KWARGS,
                   labels=[str(i) for i in range(10)], dataset="sklearn-digits",
                   metrics=metrics, sidecar=record, echo=verbose)
    return {**metrics, **shipped.record}    # the record has sha256, bytes, config


if __name__ == "__main__":
    run_script(main)
