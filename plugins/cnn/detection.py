"""torchvision's COCO detectors as catalog models, and the detection predictor of the CNN family.

:func:`detector` builds a torchvision detection model offline (no backbone download),
laid out exactly as torchvision lays it out for its COCO weights, so that
``torchvision:...COCO_V1`` weights load strictly: Faster R-CNN's trained backbone uses
``FrozenBatchNorm2d`` where the random architecture trains ``BatchNorm2d``.

:func:`detect` is ``zoo.predict`` for ("cnn", "object-detection"): torchvision detectors
take the image as it is (0..1 floats, any size; they resize and normalise inside) and
answer in its pixels; zoo's own YOLO goes through :func:`zoo.plugins.cnn.yolo.detect`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def detector(*, name: str, num_classes: int = 91, **kwargs: Any) -> nn.Module:
    """torchvision's detection model ``name`` with random weights, built without a download.

    Args:
        name: a torchvision detection builder (``"ssdlite320_mobilenet_v3_large"``,
            ``"fasterrcnn_mobilenet_v3_large_320_fpn"``).
        num_classes: COCO's 91 ids (background and unused ids included) by default.
        kwargs: more builder arguments (``score_thresh``, ``detections_per_img``, ...).
    """
    import torchvision.models as tvm

    from zoo.loading.build import pending_source

    model = tvm.get_model(name, weights=None, weights_backbone=None, num_classes=num_classes,
                          **kwargs)
    source = pending_source() or ""
    if source.startswith("torchvision:") and name.startswith("fasterrcnn"):
        # torchvision builds trained Faster R-CNNs with a frozen-statistics backbone (its
        # files have no num_batches_tracked); the numbers in eval mode are the same
        freeze_batchnorm(model)
    return model


def freeze_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` by torchvision's ``FrozenBatchNorm2d`` (same statistics)."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    for parent in list(model.modules()):
        for key, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
                with torch.no_grad():
                    frozen.weight.copy_(child.weight)
                    frozen.bias.copy_(child.bias)
                    frozen.running_mean.copy_(child.running_mean)
                    frozen.running_var.copy_(child.running_var)
                setattr(parent, key, frozen)
    return model


def is_torchvision_detector(model: Any) -> bool:
    """A torchvision two-stage (R-CNN) or single-stage (SSD, RetinaNet, FCOS) detector."""
    return type(model).__module__.startswith("torchvision.models.detection")


def detect(model: Any, spec: Any, tag: str | None, image: Any, *,
           threshold: float | None = None) -> list[dict[str, Any]]:
    """``zoo.predict`` for CNN detectors: ``[{"label", "score", "box": [x0, y0, x1, y1]}]``,
    best first, boxes in the image's own pixels.

    Labels are the tag's, else the ones the weights came with (torchvision's COCO
    categories, ``model.zoo_labels``), else the class index.
    """
    if not is_torchvision_detector(model):
        from zoo.plugins.cnn.yolo import detect as yolo_detect

        return yolo_detect(model, spec, tag, image, threshold=threshold)
    import numpy as np

    from zoo.loading.loaders import labels_of
    from zoo.loading.preprocess import load_image

    img = load_image(image).convert("RGB")
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        det = model([x])[0]
    model.train(was_training)
    labels = (spec.pretrained[tag].labels if tag and spec.pretrained[tag].labels else None) \
        or labels_of(model)
    cut = 0.5 if threshold is None else float(threshold)
    out = []
    for box, score, label in zip(det["boxes"], det["scores"], det["labels"], strict=True):
        if float(score) < cut:
            continue
        i = int(label)
        out.append({"label": labels[i] if labels and i < len(labels) else str(i),
                    "score": float(score), "box": [round(v, 1) for v in box.tolist()]})
    return sorted(out, key=lambda d: -d["score"])
