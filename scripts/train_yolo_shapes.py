"""Train the compact YOLO detector on synthetic shapes and write ``zoo/trained/yolo-shapes.*``.

Data comes from :func:`zoo.plugins.cnn.shapes.make_shapes`: every epoch draws a fresh,
seeded set of 64 x 64 images (coloured circles, squares, triangles on noise), so the
model never sees an image twice and the run is reproducible. Evaluation is mAP@0.5 on
a separate seeded validation set. Single-threaded on purpose (shared CPUs):

    OMP_NUM_THREADS=1 python scripts/train_yolo_shapes.py

Prints the metrics and the catalog lines to update (``sha256`` and ``metrics`` of
``[models.yolo.pretrained.shapes]``).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from zoo.plugins.cnn.shapes import CLASSES, make_shapes
from zoo.plugins.cnn.yolo import evaluate, preprocess, yolo
from zoo.shipping import run_script, ship

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "zoo" / "trained" / "yolo-shapes.safetensors"
VAL_SEED = 10_000      # validation images; the test suite uses yet another seed
TRAIN_SEED = 1         # epoch e trains on make_shapes(..., seed=TRAIN_SEED + e)


def main(out: str | Path = DEFAULT_OUT, *, epochs: int = 12, train_size: int = 3000,
         val_size: int = 500, batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
         verbose: bool = True) -> dict:
    """Train, evaluate and save; return ``{"map50": ..., "ap": {...}, "sha256": ..., ...}``."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    model = yolo(num_classes=len(CLASSES))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * -(-train_size // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.1)
    val_images, val_targets = make_shapes(val_size, seed=VAL_SEED)
    start = time.time()
    for epoch in range(epochs):
        images, targets = make_shapes(train_size, seed=TRAIN_SEED + epoch)
        # Horizontal flips are free extra variety (every class is mirror-symmetric).
        flip = torch.rand(train_size) < 0.5
        images[flip] = images[flip].flip(-1)
        for i in flip.nonzero().flatten().tolist():
            b = targets[i]["boxes"].clone()
            b[:, [0, 2]] = images.shape[-1] - targets[i]["boxes"][:, [2, 0]]
            targets[i] = {"boxes": b, "labels": targets[i]["labels"]}
        order = torch.randperm(train_size)
        model.train()
        total = 0.0
        for s in range(0, train_size, batch_size):
            idx = order[s:s + batch_size]
            loss = model.loss(model(preprocess(images[idx])), [targets[i] for i in idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if verbose:
            print(f"epoch {epoch + 1:2d}/{epochs}  loss {total / train_size:.3f}  "
                  f"{time.time() - start:5.0f}s", flush=True)
    result = evaluate(model, val_images, val_targets)
    metrics = {"map50": round(result["map"], 4)}
    record = {"ap": {CLASSES[c]: round(v, 4) for c, v in result["ap"].items()},
              "seconds": round(time.time() - start, 1),
              "config": {"epochs": epochs, "train_size": train_size, "val_size": val_size,
                         "val_seed": VAL_SEED, "batch_size": batch_size, "lr": lr, "seed": seed}}
    shipped = ship(model.eval(), out, name="yolo", tag="shapes",
                   kwargs={"num_classes": len(CLASSES)}, labels=CLASSES,
                   dataset="synthetic-shapes", metrics=metrics, sidecar=record, echo=verbose)
    return {**metrics, **shipped.record}    # the record has sha256, bytes, config


if __name__ == "__main__":
    run_script(main)
