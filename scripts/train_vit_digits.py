"""Train ``vit.digits``: the compact in-house ViT on scikit-learn's 8x8 digits.

Every digit goes through the preprocessing ``zoo.predict`` gives uploads
(``image_to_tensor(img, spec, center=True)``: crop to the ink, pad square, resize to
32 x 32, normalise), so training sees what prediction feeds the model. ViTs have little
built-in bias for images, so each batch gets a random small rotation, scale, shift and
shear (on the tensor, cheap). Held out: a stratified 20 % split (seed 0).

    OMP_NUM_THREADS=1 python scripts/train_vit_digits.py

Prints the metrics and the catalog lines to update (``sha256`` and ``metrics`` of
``[models.vit.pretrained.digits]``).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from zoo.loading.preprocess import image_to_tensor
from zoo.registry.spec import InputSpec
from zoo.shipping import ship, warmup_cosine

OUT = Path(__file__).resolve().parents[1] / "zoo" / "trained" / "vit-digits.safetensors"
#: The catalog's input spec of vit.digits.
INPUT = InputSpec(size=(1, 32, 32), mean=(0.5,), std=(0.5,))
TEST_SUBSET = 200    # held-out digits the test suite re-evaluates (the first 200)


def split_indices(seed: int = 0):
    """The digits and the stratified 80/20 split: ``(images, targets, idx_train, idx_test)``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    idx_tr, idx_te = train_test_split(np.arange(len(d.target)), test_size=0.2,
                                      stratify=d.target, random_state=seed)
    return d.images, d.target, idx_tr, idx_te


def to_tensor(images) -> torch.Tensor:
    """8x8 digits (0..16) through the upload preprocessing: ``[N, 1, 32, 32]``."""
    from PIL import Image

    return torch.cat([image_to_tensor(Image.fromarray((im * (255 / 16)).astype(np.uint8), "L"),
                                      INPUT, center=True) for im in images])


def digits_split(seed: int = 0):
    """Preprocessed digits, stratified 80/20: ``(x_train, x_test, y_train, y_test)``."""
    images, target, idx_tr, idx_te = split_indices(seed)
    x, y = to_tensor(images), torch.as_tensor(target, dtype=torch.long)
    return x[idx_tr], x[idx_te], y[idx_tr], y[idx_te]


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random affine per image: rotation +-12 deg, scale 0.85-1.15, shear, shift +-3 px."""
    n = x.shape[0]
    u = torch.rand(n, 5, generator=g)
    ang = (u[:, 0] - 0.5) * math.radians(24)
    scale = 0.85 + 0.3 * u[:, 1]
    shear = (u[:, 2] - 0.5) * 0.3
    shift = (u[:, 3:5] - 0.5) * (6 / 16)     # normalised coordinates: 2 = 32 px
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # background is -1 after normalisation ((0 - 0.5) / 0.5): pad with it
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``x`` classified as ``y``."""
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N digits (smoke)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    from zoo.plugins.transformer.vit import vit

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    x_tr, x_te, y_tr, y_te = digits_split(args.seed)
    if args.limit:
        x_tr, y_tr = x_tr[:args.limit], y_tr[:args.limit]
    model = vit()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos_embed" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "pos_embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": rest, "weight_decay": 0.0}], lr=args.lr)
    steps = args.epochs * math.ceil(len(y_tr) / args.batch_size)
    sched = warmup_cosine(opt, steps, warmup=0.05)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(y_tr), generator=g)
        total = 0.0
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            loss = F.cross_entropy(model(augment(x_tr[idx], g)), y_tr[idx],
                                   label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if (epoch + 1) % 10 == 0 or epoch + 1 == args.epochs:
            print(f"epoch {epoch + 1}/{args.epochs} loss {total / len(y_tr):.3f} "
                  f"held-out acc {accuracy(model, x_te, y_te):.4f} ({time.time() - t0:.0f} s)",
                  flush=True)
    acc = accuracy(model, x_te, y_te)
    sub = accuracy(model, x_te[:TEST_SUBSET], y_te[:TEST_SUBSET])
    print(f"held-out accuracy {acc:.4f} ({len(y_te)} digits); first {TEST_SUBSET}: {sub:.4f}")
    ship(model, args.out, name="vit", tag="digits", kwargs={"num_classes": 10, "in_channels": 1},
         labels=[str(i) for i in range(10)], dataset="sklearn-digits",
         metrics={"accuracy": round(acc, 4), f"accuracy-first{TEST_SUBSET}": round(sub, 4)},
         sidecar={"dataset": "sklearn-digits (stratified 20% held out, seed 0)",
                  "script": "scripts/train_vit_digits.py", "epochs": args.epochs, "lr": args.lr,
                  "seed": args.seed})
    return {"accuracy": acc, "subset_accuracy": sub, "train_time_s": time.time() - t0}


if __name__ == "__main__":
    main()
