"""A compact single-stage YOLO-style detector (Redmon et al., 2016), built in-house.

The image goes through a small conv backbone down to an S x S grid (stride 8: a
64 x 64 image gives 8 x 8 cells). Every cell predicts one box: an objectness logit,
the box centre as an offset inside the cell, its width and height relative to an
anchor size, and class logits.

Output format:

* ``model.train()``: ``forward(x)`` returns the raw grid, a tensor
  ``[B, S, S, 5 + num_classes]`` laid out as ``(objectness, tx, ty, tw, th, class
  logits...)``; :func:`loss` (or ``model.loss``) turns it and the targets into a scalar.
* ``model.eval()``: ``forward(x)`` returns one dict per image,
  ``{"boxes": float [N, 4] xyxy in input pixels, "scores": float [N], "labels": int64 [N]}``,
  after a score threshold and per-class NMS (``torchvision.ops.batched_nms``), best first.

Inputs are float images normalised by :data:`MEAN` / :data:`STD` (the catalog's input
spec); :func:`preprocess` does that for ``uint8`` images. Targets use torchvision's
detection format: per image ``{"boxes": [k, 4] xyxy pixels, "labels": [k]}``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.ops import batched_nms, generalized_box_iou_loss

#: Normalisation the detector expects (matches the catalog's ``input`` for ``yolo``).
MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.1, inplace=True))


class YOLO(nn.Module):
    """Single-scale YOLO: conv backbone (stride 8), one box per grid cell.

    Args:
        num_classes: object classes (no background class; objectness handles that).
        width: channels of the first conv; later stages use 2x, 4x and 8x.
        anchor: box side in pixels that ``tw = th = 0`` stands for.
        score_threshold: eval-mode detections below this score are dropped.
        iou_threshold: NMS overlap above which the lower-scored box of a class is dropped.
        max_detections: most boxes returned per image.
    """

    stride = 8

    def __init__(self, num_classes: int = 3, width: int = 16, anchor: float = 16.0,
                 score_threshold: float = 0.25, iou_threshold: float = 0.5,
                 max_detections: int = 100):
        super().__init__()
        w = width
        self.num_classes = num_classes
        self.anchor = float(anchor)
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections
        self.backbone = nn.Sequential(
            _conv(3, w, 2), _conv(w, 2 * w),                 # 1/2
            _conv(2 * w, 2 * w, 2), _conv(2 * w, 4 * w),     # 1/4
            _conv(4 * w, 4 * w, 2), _conv(4 * w, 8 * w),     # 1/8
            _conv(8 * w, 8 * w),
        )
        self.head = nn.Conv2d(8 * w, 5 + num_classes, 1)
        # Start with low objectness everywhere: most cells are background, and a neutral
        # start spends the first epochs just learning that.
        nn.init.constant_(self.head.bias[0], -4.0)

    def forward(self, x: torch.Tensor):
        """Raw grid ``[B, S, S, 5 + C]`` in training mode, detections in eval mode."""
        preds = self.head(self.backbone(x)).permute(0, 2, 3, 1)
        if self.training:
            return preds
        return self.postprocess(preds)

    def decode(self, preds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Grid -> ``(boxes [B, S*S, 4] xyxy pixels, objectness [B, S*S], class probs)``."""
        return decode(preds, stride=self.stride, anchor=self.anchor)

    def postprocess(self, preds: torch.Tensor, *, score_threshold: float | None = None
                    ) -> list[dict[str, torch.Tensor]]:
        """Decode, threshold and run per-class NMS; one detections dict per image."""
        threshold = self.score_threshold if score_threshold is None else score_threshold
        boxes, obj, probs = self.decode(preds)
        cls_prob, labels = probs.max(-1)
        scores = obj * cls_prob
        out = []
        for b in range(preds.shape[0]):
            keep = scores[b] > threshold
            bx, sc, lb = boxes[b][keep], scores[b][keep], labels[b][keep]
            idx = batched_nms(bx, sc, lb, self.iou_threshold)[: self.max_detections]
            # Detections are results, not part of a graph to backpropagate through.
            out.append({"boxes": bx[idx].detach(), "scores": sc[idx].detach(),
                        "labels": lb[idx]})
        return out

    def loss(self, preds: torch.Tensor, targets: list[dict[str, torch.Tensor]]
             ) -> torch.Tensor:
        """Training loss of raw grid predictions against targets (see :func:`loss`)."""
        return loss(preds, targets, stride=self.stride, anchor=self.anchor)


def decode(preds: torch.Tensor, *, stride: int = 8, anchor: float = 16.0
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Turn raw grid predictions into boxes (xyxy pixels), objectness and class probabilities."""
    b, s_h, s_w, _ = preds.shape
    gy, gx = torch.meshgrid(torch.arange(s_h, device=preds.device),
                            torch.arange(s_w, device=preds.device), indexing="ij")
    cx = (gx + torch.sigmoid(preds[..., 1])) * stride
    cy = (gy + torch.sigmoid(preds[..., 2])) * stride
    # Clamped so that an untrained or diverging head cannot overflow exp().
    w = anchor * torch.exp(preds[..., 3].clamp(-6.0, 4.0))
    h = anchor * torch.exp(preds[..., 4].clamp(-6.0, 4.0))
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    obj = torch.sigmoid(preds[..., 0])
    probs = torch.softmax(preds[..., 5:], -1)
    return boxes.reshape(b, -1, 4), obj.reshape(b, -1), probs.reshape(b, s_h * s_w, -1)


def loss(preds: torch.Tensor, targets: list[dict[str, torch.Tensor]], *, stride: int = 8,
         anchor: float = 16.0, box_weight: float = 5.0) -> torch.Tensor:
    """YOLO loss: objectness BCE on every cell, GIoU and class cross-entropy on object cells.

    Each ground-truth box is assigned to the cell holding its centre (when two centres
    share a cell, the larger box keeps it). All terms are summed and divided by the
    number of assigned boxes, so the loss does not depend on the batch size.

    Args:
        preds: raw grid ``[B, S, S, 5 + C]`` from ``forward`` in training mode.
        targets: per image ``{"boxes": [k, 4] xyxy pixels, "labels": [k]}``.
    """
    b, s_h, s_w, _ = preds.shape
    obj_t = torch.zeros(b, s_h, s_w, device=preds.device)
    box_t = torch.zeros(b, s_h, s_w, 4, device=preds.device)
    cls_t = torch.zeros(b, s_h, s_w, dtype=torch.long, device=preds.device)
    for i, t in enumerate(targets):
        boxes = torch.as_tensor(t["boxes"], dtype=torch.float32, device=preds.device)
        if boxes.numel() == 0:
            continue
        labels = torch.as_tensor(t["labels"], device=preds.device).long()
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        for j in area.argsort().tolist():  # small first, so a larger box wins a shared cell
            cx = float(boxes[j, 0] + boxes[j, 2]) / 2
            cy = float(boxes[j, 1] + boxes[j, 3]) / 2
            gx = min(max(int(cx // stride), 0), s_w - 1)
            gy = min(max(int(cy // stride), 0), s_h - 1)
            obj_t[i, gy, gx] = 1.0
            box_t[i, gy, gx] = boxes[j]
            cls_t[i, gy, gx] = labels[j]
    pos = obj_t > 0
    n_pos = max(int(pos.sum()), 1)
    l_obj = F.binary_cross_entropy_with_logits(preds[..., 0], obj_t, reduction="sum")
    if not pos.any():
        return l_obj / n_pos
    boxes, _, _ = decode(preds, stride=stride, anchor=anchor)
    pred_boxes = boxes.reshape(b, s_h, s_w, 4)[pos]
    l_box = generalized_box_iou_loss(pred_boxes, box_t[pos], reduction="sum")
    l_cls = F.cross_entropy(preds[..., 5:][pos], cls_t[pos], reduction="sum")
    return (l_obj + box_weight * l_box + l_cls) / n_pos


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """``uint8 [B, 3, H, W]`` images -> the normalised float input the detector expects."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


@torch.no_grad()
def evaluate(model: YOLO, images: torch.Tensor, targets: list[dict[str, torch.Tensor]], *,
             batch_size: int = 256, score_threshold: float = 0.01) -> dict[str, Any]:
    """mAP@0.5 of ``model`` on uint8 ``images`` and their targets (eval mode, low threshold).

    A low score threshold is what AP needs: the curve is swept over all scores.
    """
    from .shapes import mean_average_precision

    was_training = model.training
    model.eval()
    detections: list[dict[str, torch.Tensor]] = []
    for start in range(0, len(images), batch_size):
        x = preprocess(images[start:start + batch_size])
        preds = model.head(model.backbone(x)).permute(0, 2, 3, 1)
        detections += model.postprocess(preds, score_threshold=score_threshold)
    model.train(was_training)
    return mean_average_precision(detections, targets, num_classes=model.num_classes)


def yolo(*, num_classes: int = 3, width: int = 16, anchor: float = 16.0,
         score_threshold: float = 0.25, iou_threshold: float = 0.5) -> YOLO:
    """Build the compact YOLO detector (stride 8; 64 x 64 input gives an 8 x 8 grid)."""
    return YOLO(num_classes=num_classes, width=width, anchor=anchor,
                score_threshold=score_threshold, iou_threshold=iou_threshold)


def detect(model: YOLO, spec: Any, tag: str | None, image: Any, *,
           threshold: float | None = None) -> list[dict[str, Any]]:
    """``zoo.predict`` for detection: boxes in the uploaded image's own pixels.

    Returns a list of ``{"label": str, "score": float, "box": [x0, y0, x1, y1]}``, best
    first. The image is resized to the declared input size and boxes scaled back.
    """
    from zoo.loading.preprocess import image_to_tensor, load_image

    img = load_image(image)
    inp = spec.input_for(tag)
    x = image_to_tensor(img, inp)
    _, h, w = inp.size
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        preds = model.head(model.backbone(x)).permute(0, 2, 3, 1)
        det = model.postprocess(preds, score_threshold=threshold)[0]
    model.train(was_training)
    scale = torch.tensor([img.width / w, img.height / h, img.width / w, img.height / h])
    labels = spec.pretrained[tag].labels if tag and spec.pretrained[tag].labels else None
    return [{"label": labels[int(lb)] if labels else str(int(lb)), "score": float(sc),
             "box": [round(v, 1) for v in (bx * scale).tolist()]}
            for bx, sc, lb in zip(det["boxes"], det["scores"], det["labels"], strict=True)]
