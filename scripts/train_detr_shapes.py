"""Train ``detr.shapes``: the compact DETR on the synthetic shapes (circle/square/triangle).

Data: ``zoo.plugins.cnn.shapes.make_shapes`` (64 x 64, 1-3 objects), training images
seed 0, held-out images seed 1. Hungarian matching + DETR's set loss with auxiliary
decoder losses, AdamW, gradient clipping at 0.1 (the paper's), random horizontal flips.
Reports mAP@0.5 on the held-out images.

    OMP_NUM_THREADS=1 python scripts/train_detr_shapes.py

Writes ``zoo/trained/detr-shapes.safetensors`` and prints the catalog lines to update.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from zoo.shipping import ship, warmup_cosine

OUT = Path(__file__).resolve().parents[1] / "zoo" / "trained" / "detr-shapes.safetensors"
TEST_SUBSET = 100     # held-out images the test suite re-evaluates


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=2000, help="training images")
    ap.add_argument("--test", type=int, default=300, help="held-out images")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    from zoo.plugins.cnn.shapes import CLASSES, make_shapes
    from zoo.plugins.transformer.detr import (
        compact_detr,
        evaluate,
        preprocess,
        set_loss,
        to_detr_targets,
    )

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    images, targets = make_shapes(args.train, size=64, seed=0)
    test_images, test_targets = make_shapes(args.test, size=64, seed=1)
    model = compact_detr(num_classes=len(CLASSES))
    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    opt = torch.optim.AdamW([{"params": backbone, "lr": args.lr},
                             {"params": rest, "lr": args.lr}], weight_decay=1e-4)
    steps = args.epochs * math.ceil(args.train / args.batch_size)
    sched = warmup_cosine(opt, steps, warmup=0.05)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(args.train, generator=g).tolist()
        total, n = 0.0, 0
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            x = images[idx]
            tg = [dict(targets[j]) for j in idx]
            flip = torch.rand(len(idx), generator=g) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            for t, f in zip(tg, flip.tolist(), strict=True):
                if f:
                    b = t["boxes"].clone()
                    b[:, [0, 2]] = 64 - t["boxes"][:, [2, 0]]
                    t["boxes"] = b
            loss = set_loss(model(preprocess(x)), to_detr_targets(tg, (64, 64)))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
            opt.step()
            sched.step()
            total, n = total + loss.item(), n + 1
        if (epoch + 1) % 5 == 0 or epoch + 1 == args.epochs:
            m = evaluate(model, test_images, test_targets, num_classes=len(CLASSES))["map"]
            print(f"epoch {epoch + 1}/{args.epochs} loss {total / n:.3f} held-out mAP@0.5 "
                  f"{m:.4f} ({time.time() - t0:.0f} s)", flush=True)
    full = evaluate(model, test_images, test_targets, num_classes=len(CLASSES))
    sub = evaluate(model, test_images[:TEST_SUBSET], test_targets[:TEST_SUBSET],
                   num_classes=len(CLASSES))
    print(f"held-out mAP@0.5 {full['map']:.4f} ({args.test} images); first {TEST_SUBSET}: "
          f"{sub['map']:.4f}; per class {full['ap']}")
    ship(model, args.out, name="detr_compact", tag="shapes",
         kwargs={"num_classes": len(CLASSES)}, labels=CLASSES, dataset="synthetic-shapes",
         metrics={"map50": round(full["map"], 4)})
    return {"map50": full["map"], "subset_map50": sub["map"], "train_time_s": time.time() - t0}


if __name__ == "__main__":
    main()
