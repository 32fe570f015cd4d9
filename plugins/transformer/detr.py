"""DETR: object detection as set prediction (Carion et al., 2020).

Two builders:

* :func:`detr`: the paper's model (ResNet-50 backbone, 6+6 layers, 100 queries) through
  transformers' ``DetrForObjectDetection``; the backbone is timm's ResNet-50 with random
  weights, so building never downloads anything.
* :func:`compact_detr`: the same recipe at toy scale (a four-stage CNN, a small
  encoder-decoder, a handful of object queries) for 64 x 64 images such as the synthetic
  shapes (:mod:`zoo.plugins.cnn.shapes`).

Both return ``logits`` (``batch x queries x (classes + 1)``, the last class is
"no object") and ``pred_boxes`` (``cx, cy, w, h`` in 0..1). Training matches queries to
targets one-to-one with the Hungarian algorithm (:func:`hungarian_match`) and applies the
set loss (:func:`set_loss`); :func:`postprocess` turns outputs into
``{"boxes": xyxy pixels, "scores", "labels"}`` per image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

#: Input normalisation of the compact model (the catalog's input spec).
MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)


def detr(*, num_classes: int = 91, num_queries: int = 100, **config: Any):
    """DETR-ResNet-50 from ``DetrConfig`` (random weights, offline)."""
    from transformers import DetrConfig, DetrForObjectDetection

    from .hub import construct

    return construct(DetrForObjectDetection,
                     DetrConfig(num_labels=num_classes, num_queries=num_queries, **config))


class CompactDETR(nn.Module):
    """A small DETR: CNN backbone (stride 8), transformer encoder-decoder, object queries.

    ``forward`` returns ``{"logits", "pred_boxes"}``; in training mode also ``"aux"``, the
    same from every earlier decoder layer (DETR's auxiliary losses, which speed up
    convergence a lot at this scale).
    """

    def __init__(self, *, num_classes: int = 3, num_queries: int = 10, d_model: int = 64,
                 heads: int = 4, enc_layers: int = 2, dec_layers: int = 2, ffn_dim: int = 128,
                 width: int = 32, image_size: int = 64, dropout: float = 0.0):
        super().__init__()
        self.num_classes = num_classes

        def stage(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.backbone = nn.Sequential(stage(3, width, 2), stage(width, width * 2, 2),
                                      stage(width * 2, width * 4, 2),
                                      stage(width * 4, width * 4, 1))
        self.input_proj = nn.Conv2d(width * 4, d_model, 1)
        side = image_size // 8
        self.pos_embed = nn.Parameter(torch.randn(1, side * side, d_model) * 0.02)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model, heads, ffn_dim, dropout, batch_first=True,
                                       norm_first=True), enc_layers, enable_nested_tensor=False)
        self.decoder_layers = nn.ModuleList(
            nn.TransformerDecoderLayer(d_model, heads, ffn_dim, dropout, batch_first=True,
                                       norm_first=True) for _ in range(dec_layers))
        self.decoder_norm = nn.LayerNorm(d_model)
        self.query_embed = nn.Parameter(torch.randn(1, num_queries, d_model))
        self.class_embed = nn.Linear(d_model, num_classes + 1)
        self.bbox_embed = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(inplace=True),
                                        nn.Linear(d_model, d_model), nn.ReLU(inplace=True),
                                        nn.Linear(d_model, 4))

    def forward(self, pixel_values: torch.Tensor) -> dict[str, Any]:
        f = self.input_proj(self.backbone(pixel_values))
        src = f.flatten(2).transpose(1, 2)
        if src.shape[1] != self.pos_embed.shape[1]:
            raise ValueError(f"expected {int(self.pos_embed.shape[1] ** 0.5) * 8}-pixel square "
                             f"images, got {tuple(pixel_values.shape[-2:])}")
        memory = self.encoder(src + self.pos_embed)
        # repeat, not expand: a view of a parameter breaks FlopCounterMode's module
        # tracker under inference_mode (zoo.loading.build.summarize)
        tgt = self.query_embed.repeat(src.shape[0], 1, 1)
        outs = []
        for layer in self.decoder_layers:
            tgt = layer(tgt, memory)
            h = self.decoder_norm(tgt)
            outs.append({"logits": self.class_embed(h),
                         "pred_boxes": self.bbox_embed(h).sigmoid()})
        out: dict[str, Any] = dict(outs[-1])
        if self.training:
            out["aux"] = outs[:-1]
        return out


def compact_detr(*, num_classes: int = 3, num_queries: int = 10, d_model: int = 64,
                 heads: int = 4, enc_layers: int = 2, dec_layers: int = 2, ffn_dim: int = 128,
                 width: int = 32, image_size: int = 64) -> CompactDETR:
    """Build the compact DETR for ``3 x image_size x image_size`` images."""
    return CompactDETR(num_classes=num_classes, num_queries=num_queries, d_model=d_model,
                       heads=heads, enc_layers=enc_layers, dec_layers=dec_layers,
                       ffn_dim=ffn_dim, width=width, image_size=image_size)


# -- matching and loss ----------------------------------------------------------------------

def _get(out: Any, key: str) -> torch.Tensor:
    return out[key] if isinstance(out, Mapping) else getattr(out, key)


def _normalised_cxcywh(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """xyxy pixel boxes -> cx, cy, w, h in 0..1 (``size`` is ``(height, width)``)."""
    from torchvision.ops import box_convert

    h, w = size
    scale = torch.tensor([w, h, w, h], dtype=boxes.dtype)
    return box_convert(boxes / scale, "xyxy", "cxcywh")


@torch.no_grad()
def hungarian_match(logits: torch.Tensor, boxes: torch.Tensor,
                    targets: Sequence[Mapping[str, torch.Tensor]], *, class_cost: float = 1.0,
                    bbox_cost: float = 5.0, giou_cost: float = 2.0
                    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One-to-one assignment of predictions to targets, per image (DETR's matcher).

    Args:
        logits: ``batch x queries x (classes + 1)``.
        boxes: ``batch x queries x 4``, normalised ``cx, cy, w, h``.
        targets: per image ``{"labels": [k], "boxes": [k, 4]}`` with normalised cxcywh boxes.

    Returns:
        per image ``(query_indices, target_indices)``, ``min(queries, k)`` pairs that
        minimise ``-class_cost * p(class) + bbox_cost * L1 - giou_cost * GIoU``.
    """
    from scipy.optimize import linear_sum_assignment
    from torchvision.ops import box_convert, generalized_box_iou

    out = []
    probs = logits.softmax(-1)
    for b, t in enumerate(targets):
        labels, tboxes = t["labels"], t["boxes"]
        if len(labels) == 0:
            empty = torch.empty(0, dtype=torch.long)
            out.append((empty, empty))
            continue
        cost = (-class_cost * probs[b][:, labels]
                + bbox_cost * torch.cdist(boxes[b], tboxes, p=1)
                - giou_cost * generalized_box_iou(box_convert(boxes[b], "cxcywh", "xyxy"),
                                                  box_convert(tboxes, "cxcywh", "xyxy")))
        q, k = linear_sum_assignment(cost.cpu().numpy())
        out.append((torch.as_tensor(q, dtype=torch.long), torch.as_tensor(k, dtype=torch.long)))
    return out


def set_loss(outputs: Mapping[str, Any], targets: Sequence[Mapping[str, torch.Tensor]], *,
             eos_coef: float = 0.1, bbox_weight: float = 5.0, giou_weight: float = 2.0
             ) -> torch.Tensor:
    """DETR's loss: Hungarian matching, then cross-entropy over all queries ("no object"
    down-weighted by ``eos_coef``) plus L1 and GIoU on matched boxes; summed over the
    final and the auxiliary decoder outputs. Targets use normalised cxcywh boxes."""
    from torchvision.ops import box_convert, generalized_box_iou_loss

    total = torch.zeros(())
    n_boxes = max(1, sum(len(t["labels"]) for t in targets))
    for out in [outputs, *outputs.get("aux", [])]:
        logits, boxes = out["logits"], out["pred_boxes"]
        num_classes = logits.shape[-1] - 1
        matches = hungarian_match(logits, boxes, targets)
        target_cls = torch.full(logits.shape[:2], num_classes, dtype=torch.long)
        src_boxes, tgt_boxes = [], []
        for b, (q, k) in enumerate(matches):
            target_cls[b, q] = targets[b]["labels"][k]
            src_boxes.append(boxes[b, q])
            tgt_boxes.append(targets[b]["boxes"][k])
        weight = torch.ones(num_classes + 1)
        weight[-1] = eos_coef
        total = total + F.cross_entropy(logits.transpose(1, 2), target_cls, weight=weight)
        sb, tb = torch.cat(src_boxes), torch.cat(tgt_boxes)
        if len(sb):
            total = total + bbox_weight * F.l1_loss(sb, tb, reduction="sum") / n_boxes
            total = total + giou_weight * generalized_box_iou_loss(
                box_convert(sb, "cxcywh", "xyxy"), box_convert(tb, "cxcywh", "xyxy"),
                reduction="sum") / n_boxes
    return total


def to_detr_targets(targets: Sequence[Mapping[str, torch.Tensor]], size: tuple[int, int]):
    """xyxy-pixel targets (the shapes dataset's) -> normalised cxcywh targets for the loss."""
    return [{"labels": t["labels"].long(), "boxes": _normalised_cxcywh(t["boxes"].float(), size)}
            for t in targets]


# -- outputs to boxes -----------------------------------------------------------------------

@torch.no_grad()
def postprocess(outputs: Any, size: tuple[int, int], *, threshold: float = 0.5
                ) -> list[dict[str, torch.Tensor]]:
    """Per image ``{"boxes": xyxy pixels, "scores", "labels"}`` of queries whose best real
    class scores at least ``threshold`` (works on compact and transformers' DETR outputs).

    ``size`` is ``(height, width)`` of the images in pixels.
    """
    from torchvision.ops import box_convert

    probs = _get(outputs, "logits").softmax(-1)[..., :-1]
    scores, labels = probs.max(-1)
    h, w = size
    boxes = box_convert(_get(outputs, "pred_boxes"), "cxcywh", "xyxy") * \
        torch.tensor([w, h, w, h], dtype=probs.dtype)
    result = []
    for b in range(probs.shape[0]):
        keep = scores[b] >= threshold
        order = scores[b][keep].argsort(descending=True)
        result.append({"boxes": boxes[b][keep][order], "scores": scores[b][keep][order],
                       "labels": labels[b][keep][order]})
    return result


def preprocess(images: torch.Tensor, mean: Sequence[float] = MEAN,
               std: Sequence[float] = STD) -> torch.Tensor:
    """``uint8 [B, 3, H, W]`` -> the normalised float input."""
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (images.float() / 255.0 - m) / s


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, targets, *, batch_size: int = 128,
             num_classes: int | None = None) -> dict[str, Any]:
    """mAP@0.5 on uint8 ``images`` with xyxy-pixel targets (low threshold, as AP needs)."""
    from zoo.plugins.cnn.shapes import mean_average_precision

    was_training = model.training
    model.eval()
    dets: list[dict[str, torch.Tensor]] = []
    size = tuple(images.shape[-2:])
    for i in range(0, len(images), batch_size):
        dets += postprocess(model(preprocess(images[i:i + batch_size])), size, threshold=0.01)
    model.train(was_training)
    return mean_average_precision(dets, targets, num_classes=num_classes)


def detect(model: nn.Module, spec: Any, tag: str | None, image: Any, *,
           threshold: float = 0.5) -> list[dict[str, Any]]:
    """``zoo.predict`` for DETR: ``[{"label", "score", "box": [x0, y0, x1, y1]}]``, best
    first, boxes in the uploaded image's own pixels.

    A model loaded from a Hub repo (``detr.coco``) is fed by the repo's own image
    processor (``model.image_processor``: shortest side 800, aspect ratio kept, with a
    pixel mask), as transformers' object-detection pipeline does; others get the
    catalog's input spec. Labels: the tag's, else the repo's ``id2label``.
    """
    from zoo.loading.loaders import labels_of
    from zoo.loading.preprocess import image_to_tensor, load_image

    img = load_image(image).convert("RGB")
    model.eval()
    processor = getattr(model, "image_processor", None)
    with torch.inference_mode():
        if processor is not None:
            out = model(**processor(images=img, return_tensors="pt"))
        else:
            out = model(image_to_tensor(img, spec.input_for(tag)))
        det = postprocess(out, (img.height, img.width), threshold=threshold)[0]
    labels = (spec.pretrained[tag].labels if tag and spec.pretrained[tag].labels else None) \
        or labels_of(model)
    id2label = getattr(getattr(model, "config", None), "id2label", None) or {}

    def name(i: int) -> str:
        if labels and i < len(labels):
            return labels[i]
        return str(id2label.get(i, i))

    return [{"label": name(int(lb)), "score": float(sc),
             "box": [round(v, 1) for v in bx.tolist()]}
            for bx, sc, lb in zip(det["boxes"], det["scores"], det["labels"], strict=True)]
