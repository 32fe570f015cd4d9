"""Synthetic detection data: coloured circles, squares and triangles on noise.

Deterministic by seed, generated in memory (no download), small enough to train a
detector on a CPU in minutes. Used by the YOLO plugin and meant to be imported by
other detectors, fine-tuning and demos::

    from zoo.plugins.cnn.shapes import CLASSES, make_shapes, mean_average_precision

    images, targets = make_shapes(8, size=64, seed=0)
    images.shape                # torch.Size([8, 3, 64, 64]), dtype uint8
    targets[0]["boxes"]         # float32 [k, 4], xyxy in pixels
    targets[0]["labels"]        # int64 [k], indexes into CLASSES

Boxes are the tight bounds of each drawn shape. Objects overlap little (IoU < 0.2 with
each other), so every one of them stays visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

#: Class names in label order.
CLASSES: tuple[str, ...] = ("circle", "square", "triangle")

# Saturated colours, far from the grey noise background.
_PALETTE = np.array([
    (230, 40, 40), (40, 200, 60), (50, 90, 240), (240, 220, 30),
    (230, 60, 220), (30, 220, 230), (250, 140, 20), (245, 245, 245),
], dtype=np.float32)


def _box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _mask(kind: int, x0: float, y0: float, side: float, yy: np.ndarray, xx: np.ndarray):
    """Boolean mask of one shape whose bounding box is (x0, y0, x0+side, y0+side)."""
    # Pixel centres sit at +0.5, so a box edge at integer x covers pixels up to x - 1.
    px, py = xx + 0.5, yy + 0.5
    if kind == 0:
        r = side / 2
        return (px - x0 - r) ** 2 + (py - y0 - r) ** 2 <= r * r
    if kind == 1:
        return (px >= x0) & (px <= x0 + side) & (py >= y0) & (py <= y0 + side)
    # Triangle pointing up: apex at the top centre, base along the bottom edge.
    rel_y = (py - y0) / side
    half = rel_y * side / 2
    cx = x0 + side / 2
    return (rel_y >= 0) & (rel_y <= 1) & (px >= cx - half) & (px <= cx + half)


def render_shapes(rng: np.random.Generator, size: int = 64, *, min_objects: int = 1,
                  max_objects: int = 3, min_side: float | None = None,
                  max_side: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one image with ``rng``; return ``(HxWx3 uint8, boxes [k,4] xyxy, labels [k])``."""
    min_side = min_side if min_side is not None else size * 0.16
    max_side = max_side if max_side is not None else size * 0.42
    # Noise background: a random grey level plus per-pixel noise, dimmer than the shapes.
    base = rng.uniform(30, 140)
    img = base + rng.normal(0, rng.uniform(8, 30), (size, size, 3))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    boxes: list[list[float]] = []
    labels: list[int] = []
    count = int(rng.integers(min_objects, max_objects + 1))
    for _ in range(count):
        for _try in range(20):  # rejection sampling keeps overlaps small
            side = float(rng.uniform(min_side, max_side))
            x0 = float(rng.uniform(0, size - side))
            y0 = float(rng.uniform(0, size - side))
            box = [x0, y0, x0 + side, y0 + side]
            if all(_box_iou(box, b) < 0.2 for b in boxes):
                break
        else:
            continue
        kind = int(rng.integers(0, len(CLASSES)))
        colour = _PALETTE[int(rng.integers(0, len(_PALETTE)))] * rng.uniform(0.8, 1.0)
        img[_mask(kind, x0, y0, side, yy, xx)] = colour
        boxes.append(box)
        labels.append(kind)
    img = np.clip(img, 0, 255).astype(np.uint8)
    return (img, np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            np.asarray(labels, dtype=np.int64))


def make_shapes(n: int, size: int = 64, seed: int = 0, *, min_objects: int = 1,
                max_objects: int = 3) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Generate ``n`` images of coloured shapes on noise, the same ones for the same seed.

    Args:
        n: number of images.
        size: side of the square images in pixels.
        seed: the images depend only on ``(n, size, seed, min_objects, max_objects)``.
        min_objects, max_objects: objects per image (inclusive range).

    Returns:
        ``(images, targets)``: images is a ``uint8`` tensor ``[n, 3, size, size]``;
        ``targets[i]`` is ``{"boxes": float32 [k, 4] xyxy in pixels, "labels": int64 [k]}``
        with labels indexing :data:`CLASSES` (the format torchvision detectors use).
    """
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    targets = []
    for i in range(n):
        img, boxes, labels = render_shapes(rng, size, min_objects=min_objects,
                                           max_objects=max_objects)
        images[i] = img
        targets.append({"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels)})
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), targets


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision-recall curve, all-point interpolated (PASCAL VOC 2010+)."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]   # the precision envelope
    idx = np.where(r[1:] != r[:-1])[0]
    return float(np.sum((r[idx + 1] - r[idx]) * p[idx + 1]))


def mean_average_precision(detections: Sequence[dict[str, Any]],
                           targets: Sequence[dict[str, Any]], *, iou_threshold: float = 0.5,
                           num_classes: int | None = None) -> dict[str, Any]:
    """mAP at one IoU threshold (mAP@0.5 by default), VOC-style, over a set of images.

    Args:
        detections: per image ``{"boxes": [N,4] xyxy, "scores": [N], "labels": [N]}``.
        targets: per image ``{"boxes": [k,4] xyxy, "labels": [k]}``, same order.
        iou_threshold: a detection is a true positive if it overlaps an unmatched
            ground-truth box of its class by at least this IoU (greedy, by score).
        num_classes: classes to average over; defaults to those present in ``targets``.

    Returns:
        ``{"map": float, "ap": {class_index: float}}``; classes with no ground truth
        are left out of the mean.
    """
    from torchvision.ops import box_iou

    if len(detections) != len(targets):
        raise ValueError(f"{len(detections)} detection sets for {len(targets)} targets")
    gt_labels = [torch.as_tensor(t["labels"]).long() for t in targets]
    classes = range(num_classes) if num_classes is not None else \
        sorted({int(c) for g in gt_labels for c in g.tolist()})
    ap: dict[int, float] = {}
    for c in classes:
        n_gt = sum(int((g == c).sum()) for g in gt_labels)
        if n_gt == 0:
            continue
        scores, hits = [], []
        for det, tgt, g in zip(detections, targets, gt_labels, strict=True):
            dmask = torch.as_tensor(det["labels"]).long() == c
            dboxes = torch.as_tensor(det["boxes"], dtype=torch.float32)[dmask]
            dscores = torch.as_tensor(det["scores"], dtype=torch.float32)[dmask]
            gboxes = torch.as_tensor(tgt["boxes"], dtype=torch.float32)[g == c]
            order = dscores.argsort(descending=True)
            dboxes, dscores = dboxes[order], dscores[order]
            matched = torch.zeros(len(gboxes), dtype=torch.bool)
            ious = box_iou(dboxes, gboxes) if len(gboxes) and len(dboxes) else None
            for j in range(len(dboxes)):
                hit = False
                if ious is not None:
                    row = ious[j].clone()
                    row[matched] = -1.0
                    best = int(row.argmax())
                    if row[best] >= iou_threshold:
                        matched[best] = True
                        hit = True
                scores.append(float(dscores[j]))
                hits.append(hit)
        if not scores:
            ap[c] = 0.0
            continue
        order = np.argsort(-np.asarray(scores), kind="stable")
        tp = np.asarray(hits, dtype=np.float64)[order]
        ctp, cfp = np.cumsum(tp), np.cumsum(1.0 - tp)
        ap[c] = average_precision(ctp / n_gt, ctp / np.maximum(ctp + cfp, 1e-12))
    mean = float(np.mean(list(ap.values()))) if ap else 0.0
    return {"map": mean, "ap": ap}

