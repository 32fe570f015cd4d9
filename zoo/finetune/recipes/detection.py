"""Object detection (YOLO, DETR) on a user's boxes, given as a COCO-style JSON file.

``--data boxes.json``::

    {"images": [{"id": 1, "file_name": "img/0001.png"}, ...],
     "annotations": [{"image_id": 1, "bbox": [x, y, width, height], "category_id": 2}, ...],
     "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}]}

as COCO writes it: ``bbox`` in pixels of the image file, top-left corner then size;
``file_name`` relative to the JSON file's folder (and inside it). Images without
annotations are background-only examples. Images are resized to the model's input size
and the boxes with them. Classes are the categories in id order; a model with another
class count gets new class outputs (``labels`` in the saved config, kept otherwise). Models:
zoo's YOLO (its own ``loss``), the DETRs (Hungarian set loss) and torchvision's detectors
(Faster R-CNN, SSD: their own losses in training mode, class 0 is background).
Metric: ``map50`` (mean average precision at IoU 0.5, VOC-style) on held-out images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from zoo.errors import UsageError
from zoo.finetune.recipes.base import DataOptions, Recipe

MAX_IMAGES = 50_000


class ObjectDetection(Recipe):
    """Boxes and labels per image; the model's own detection loss; mAP@0.5."""

    task = "object-detection"
    metric = "map50"
    modes = {"map50": "max", "loss": "min"}
    lr = 1e-3
    data_help = "a COCO-style .json file of images, boxes and categories"

    # -- data --------------------------------------------------------------------------------

    def prepare(self, data: Any, loaded: Any, options: DataOptions):
        from zoo.finetune.data import _subsample

        inp = loaded.spec.input_for(loaded.tag)
        if inp is None or len(inp.size) != 3:
            raise UsageError(f"'{loaded.ref}' declares no image input [C, H, W]")
        self.size = tuple(inp.size[1:])
        x, boxes, labels, names = self._read(Path(str(data)).expanduser(), inp)
        if options.val_data is not None:
            vx, vb, vl, vnames = self._read(Path(str(options.val_data)).expanduser(), inp)
            if vnames != names:
                raise UsageError(f"validation data '{options.val_data}' has categories "
                                 f"{vnames}, the training data {names}; use the same ones")
            tr = list(range(len(x)))
        else:
            perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0)).tolist()
            k = max(1, int(round(len(x) * options.val_fraction))) if len(x) > 1 else 0
            va, tr = sorted(perm[:k]), sorted(perm[k:])
            vx, vb, vl = x[va], boxes[va], labels[va]
        ids = torch.tensor(tr, dtype=torch.long)
        keep, _ = _subsample(ids, ids, options.limit, seed=1)
        vkeep, _ = _subsample(torch.arange(len(vx)), torch.arange(len(vx)), options.val_limit,
                              seed=2)
        train = self.split({"x": x[keep], "boxes": boxes[keep], "labels": labels[keep]})
        val = self.split({"x": vx[vkeep], "boxes": vb[vkeep], "labels": vl[vkeep]}) \
            if len(vkeep) else None
        return self.task_data(train, val, labels=names, name=str(data))

    def _read(self, path: Path, inp: Any):
        """``(images, boxes [N, K, 4] xyxy input pixels, labels [N, K] (-1: none), names)``."""
        from zoo.loading.preprocess import image_to_tensor, load_image

        doc = _load_json(path)
        cats = sorted(doc["categories"], key=lambda c: c["id"])
        names = [str(c["name"]) for c in cats]
        index = {c["id"]: i for i, c in enumerate(cats)}
        per_image: dict[Any, list[tuple[list[float], int]]] = {im["id"]: [] for im in
                                                               doc["images"]}
        for n, a in enumerate(doc["annotations"]):
            if a.get("image_id") not in per_image or a.get("category_id") not in index:
                raise UsageError(f"{path}: annotation {n} names image {a.get('image_id')!r} "
                                 f"or category {a.get('category_id')!r}, which the file does "
                                 "not list")
            bbox = a.get("bbox")
            if not (isinstance(bbox, list) and len(bbox) == 4
                    and all(isinstance(v, int | float) for v in bbox) and bbox[2] > 0
                    and bbox[3] > 0):
                raise UsageError(f"{path}: annotation {n}: bbox must be [x, y, width, "
                                 f"height] with a positive size, got {bbox!r}")
            per_image[a["image_id"]].append(([float(v) for v in bbox], index[a["category_id"]]))
        h, w = inp.size[1:]
        most = max([len(v) for v in per_image.values()] + [1])
        x = torch.empty(len(doc["images"]), *inp.size)
        boxes = torch.zeros(len(doc["images"]), most, 4)
        labels = torch.full((len(doc["images"]), most), -1, dtype=torch.long)
        root = path.parent.resolve()
        for i, im in enumerate(doc["images"]):
            file = _inside(root, im.get("file_name"), path)
            img = load_image(file)
            x[i] = image_to_tensor(img, inp)[0]
            sx, sy = w / img.width, h / img.height
            for j, (bx, lab) in enumerate(per_image[im["id"]]):
                x0, y0, bw, bh = bx
                boxes[i, j] = torch.tensor([x0 * sx, y0 * sy, (x0 + bw) * sx, (y0 + bh) * sy])
                labels[i, j] = lab
        return x, boxes, labels, names

    # -- model ---------------------------------------------------------------------------------

    def setup(self, loaded: Any, data: Any, out: Path):
        from zoo.loading.build import builder_of

        self.torchvision = _torchvision(loaded.model)
        k = len(data.labels) + (1 if self.torchvision else 0)    # + background
        current = loaded.kwargs.get("num_classes")
        if current is None or current == k:
            return loaded.model, dict(loaded.kwargs)
        # New class outputs: every weight whose name and shape still fit is kept (the
        # class layers of several heads change size together: YOLO's, SSD's six convs,
        # Faster R-CNN's class and box predictors).
        kwargs = {**loaded.kwargs, "num_classes": k}
        model = builder_of(loaded.spec)(**kwargs)
        if loaded.trained:
            own = model.state_dict()
            model.load_state_dict({n: v for n, v in loaded.model.state_dict().items()
                                   if n in own and own[n].shape == v.shape}, strict=False)
        return model, kwargs

    @staticmethod
    def targets(batch: Any) -> list[dict[str, torch.Tensor]]:
        """Per image ``{"boxes": [k, 4] xyxy pixels, "labels": [k]}`` (padding dropped)."""
        out = []
        for b, lab in zip(batch.inputs["boxes"], batch.inputs["labels"], strict=True):
            keep = lab >= 0
            out.append({"boxes": b[keep], "labels": lab[keep]})
        return out

    def loss_sum(self, model: Any, batch: Any):
        x, targets = batch.inputs["x"], self.targets(batch)
        if getattr(self, "torchvision", False):              # their own losses, as a dict
            losses = model(list(x), [{"boxes": t["boxes"], "labels": t["labels"] + 1}
                                     for t in targets])
            return sum(losses.values()) * len(x)
        if callable(getattr(model, "loss", None)):          # YOLO: raw grid + its own loss
            return model.loss(model(x), targets) * len(x)
        out = model(x)
        if isinstance(out, dict) and "pred_boxes" in out:   # the compact DETR
            from zoo.plugins.transformer.detr import set_loss, to_detr_targets

            return set_loss(out, to_detr_targets(targets, self.size)) * len(x)
        if hasattr(model, "config") and hasattr(out, "pred_boxes"):   # transformers' DETR
            from zoo.plugins.transformer.detr import to_detr_targets

            labels = [{"class_labels": t["labels"], "boxes": t["boxes"]}
                      for t in to_detr_targets(targets, self.size)]
            return model(pixel_values=x, labels=labels).loss * len(x)
        raise UsageError(f"{type(model).__name__}: zoo's detection recipe trains YOLO-style "
                         "models (a loss(preds, targets) method) and DETRs; a plugin's "
                         "detector brings its own recipe")

    def detections(self, model: Any, x: torch.Tensor) -> tuple[list[dict], torch.Tensor | None]:
        """Detections (low threshold, as AP needs) and the batch's loss when cheap."""
        from zoo.plugins.transformer.detr import postprocess

        if getattr(self, "torchvision", False):
            return [{**d, "labels": d["labels"] - 1} for d in model(list(x))], None
        if hasattr(model, "postprocess") and hasattr(model, "backbone"):   # YOLO
            preds = model.head(model.backbone(x)).permute(0, 2, 3, 1)
            return model.postprocess(preds, score_threshold=0.01), preds
        return postprocess(model(x), self.size, threshold=0.01), None

    def evaluate(self, model: Any, data: Any, split: Any) -> dict[str, float]:
        from zoo.plugins.cnn.shapes import mean_average_precision

        dets, targets, loss = [], [], 0.0
        for i in range(0, len(split), 128):
            part = split.take(range(i, min(i + 128, len(split))))
            found, preds = self.detections(model, part.inputs["x"])
            dets += found
            tg = self.targets(part)
            targets += tg
            if preds is not None:
                loss += float(model.loss(preds, tg)) * len(tg)
            elif not getattr(self, "torchvision", False):
                loss += float(self._eval_loss(model, part)) * len(tg)
        result = mean_average_precision(dets, targets, num_classes=len(data.labels))
        out = {"map50": round(float(result["map"]), 4)}
        if not getattr(self, "torchvision", False):     # they give losses in training only
            out["loss"] = loss / max(len(split), 1)
        return out

    def _eval_loss(self, model: Any, part: Any) -> float:
        try:
            return float(self.loss_sum(model, part)) / max(len(part), 1)
        except Exception:       # a model whose eval output carries no loss terms
            return float("nan")


def _torchvision(model: Any) -> bool:
    """torchvision's detectors: a list of 0..1 images in, losses (training) or detections."""
    return type(getattr(model, "transform", None)).__name__ == "GeneralizedRCNNTransform"


def _load_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UsageError(f"{path}: no such file; object detection takes a COCO-style .json "
                         "file of images, annotations and categories")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: not JSON ({type(e).__name__}); give a COCO-style file") \
            from None
    missing = [k for k in ("images", "annotations", "categories")
               if not isinstance(doc, dict) or not isinstance(doc.get(k), list)]
    if missing:
        raise UsageError(f"{path}: needs the lists {', '.join(missing)} (COCO format: "
                         "images, annotations with bbox [x, y, w, h], categories)")
    if not doc["images"] or not doc["categories"]:
        raise UsageError(f"{path}: lists no images or no categories")
    if len(doc["images"]) > MAX_IMAGES:
        raise UsageError(f"{path}: lists {len(doc['images']):,} images; give at most "
                         f"{MAX_IMAGES:,}")
    for key, fields in (("images", ("id", "file_name")), ("categories", ("id", "name"))):
        for n, item in enumerate(doc[key]):
            if not isinstance(item, dict) or any(f not in item for f in fields):
                raise UsageError(f"{path}: {key}[{n}] needs {' and '.join(fields)}")
    return doc


def _inside(root: Path, name: Any, path: Path) -> Path:
    """An image file named by the JSON: relative, and inside the JSON's folder."""
    if not isinstance(name, str) or not name or Path(name).is_absolute():
        raise UsageError(f"{path}: file_name {name!r} must be a path relative to the JSON "
                         "file's folder")
    file = (root / name).resolve()
    if not file.is_relative_to(root):
        raise UsageError(f"{path}: file_name {name!r} points outside the JSON file's "
                         "folder; keep the images next to it")
    if not file.is_file():
        raise UsageError(f"{path}: image {name!r} is missing")
    return file
