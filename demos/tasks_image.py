"""Image tasks: classification, object detection, generation, image-to-image."""

from __future__ import annotations

import math
from typing import Any

from zoo.errors import UsageError

from .base import (
    Adapter,
    DemoInputError,
    call_helper,
    check_image,
    example_path,
    gradio,
    image_input,
    task_helper,
)
from .targets import Target


def _is_digits(target: Target) -> bool:
    pre = target.spec.pretrained.get(target.tag) if target.tag else None
    return ("digits" in target.spec.tags or "digits" in (target.tag or "")
            or "digits" in ((pre.dataset or "") if pre else ""))


def _need_image_input(target: Target) -> None:
    inp = target.input
    if inp is None or len(inp.size) != 3:
        raise UsageError(f"{target.label}: declares no image input [C, H, W] "
                         f"(got {list(inp.size) if inp else None}); fix its catalog 'input'")


def tensor_to_images(x: Any, *, mean=None, std=None) -> list:
    """``N x C x H x W`` model output to PIL images (tanh range unless mean/std are given)."""
    import numpy as np
    import torch
    from PIL import Image

    x = x.detach().float().cpu()
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if mean is not None and std is not None:
        c = x.shape[1]
        x = x * torch.tensor(std[:c]).view(1, -1, 1, 1) + torch.tensor(mean[:c]).view(1, -1, 1, 1)
    else:
        x = (x + 1) / 2
    arr = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a[:, :, :3].copy())
            for a in np.ascontiguousarray(arr)]


def grid(images: list, *, pad: int = 2):
    """Tile PIL images in a near-square grid; one image comes back unchanged."""
    from PIL import Image

    if len(images) == 1:
        return images[0]
    w, h = images[0].size
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    mode = "RGB" if any(i.mode == "RGB" for i in images) else "L"
    out = Image.new(mode, (cols * w + (cols + 1) * pad, rows * h + (rows + 1) * pad), 255)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out.paste(img.convert(mode), (pad + c * (w + pad), pad + r * (h + pad)))
    return out


def to_pil(out: Any):
    """A PIL image from what helpers return: PIL, a uint8 ``H x W [x C]`` array, or a tensor."""
    import numpy as np
    from PIL import Image

    if isinstance(out, Image.Image):
        return out
    if isinstance(out, np.ndarray):
        arr = out if out.dtype == np.uint8 else np.clip(out * 255, 0, 255).astype(np.uint8)
        return Image.fromarray(arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    return grid(tensor_to_images(out))


class ImageClassification(Adapter):
    """Image in (any mode and size, converted per the input spec), top-k labels out."""

    task = "image-classification"
    hint = "Upload or paste any image: it is converted to what the model was trained on."

    def check(self, target: Target) -> None:
        _need_image_input(target)

    def top_k(self) -> int:
        labels = self.target.labels if self.target else None
        n = len(labels) if labels else int(self.target.kwargs.get("num_classes", 5) or 5)
        return max(1, min(5, n))

    def inputs(self):
        return [image_input()]

    def outputs(self):
        gr = gradio()
        return [gr.Label(num_top_classes=self.top_k(), label="prediction")]

    def examples(self):
        if _is_digits(self.target):
            return [[example_path(f"digit_{d}.png")] for d in (0, 7, 2, 5)]
        return [[example_path("shapes.png")]]

    def run(self, model, image):
        from zoo.predict import classify_image

        img = check_image(image)
        fn = task_helper(self.target) or classify_image
        ranked = call_helper(fn, self.target, model, img, top_k=self.top_k())
        return to_label(ranked)


def to_label(ranked: Any) -> dict[str, float]:
    """``[(label, p), ...]`` or ``{label: p}`` to the dict ``gr.Label`` shows."""
    if isinstance(ranked, dict):
        return {str(k): float(v) for k, v in ranked.items()}
    return {str(k): float(v) for k, v in ranked}


class ObjectDetection(Adapter):
    """Image in; boxes with labels and scores out, filtered by a score threshold."""

    task = "object-detection"
    hint = "Boxes below the score threshold are hidden."

    def inputs(self):
        gr = gradio()
        return [image_input(),
                gr.Slider(0.0, 1.0, value=0.3, step=0.05, label="score threshold")]

    def outputs(self):
        gr = gradio()
        return [gr.AnnotatedImage(label="detections"),
                gr.Dataframe(headers=["label", "score", "x0", "y0", "x1", "y1"],
                             label="boxes (pixels of the uploaded image)")]

    def examples(self):
        return [[example_path("shapes.png"), 0.3]]

    def run(self, model, image, threshold=0.3):
        from PIL import Image

        img = check_image(image).convert("RGB")
        # check_image shrinks big uploads: the picture shows the shrunk image, the table
        # promises pixels of the upload
        up_w, up_h = image.size if isinstance(image, Image.Image) else img.size
        sx, sy = up_w / img.width, up_h / img.height
        try:
            threshold = float(threshold if threshold is not None else 0.3)
        except (TypeError, ValueError):
            raise DemoInputError(f"score threshold must be a number, got {threshold!r}") from None
        fn = task_helper(self.target)
        if fn is not None:
            # A helper gets the raw image and answers in its pixels.
            out, scale = call_helper(fn, self.target, model, img,
                                     **{"threshold|score_threshold": threshold}), (1.0, 1.0)
        else:
            out, scale = self._forward(model, img)
        dets = []
        names = self.target.labels
        for box, score, label in _detections(out):
            if score < threshold:
                continue
            x0, y0, x1, y1 = (box[0] * scale[0], box[1] * scale[1],
                              box[2] * scale[0], box[3] * scale[1])
            x0, x1 = sorted((max(0, min(img.width, x0)), max(0, min(img.width, x1))))
            y0, y1 = sorted((max(0, min(img.height, y0)), max(0, min(img.height, y1))))
            name = (names[int(label)] if names and isinstance(label, int) and label < len(names)
                    else str(label))
            dets.append((name, round(score, 3), x0, y0, x1, y1))
        dets.sort(key=lambda d: -d[1])
        annotations = []
        for name, score, x0, y0, x1, y1 in dets:
            # at least one pixel, inside the picture
            x0, y0 = min(round(x0), img.width - 1), min(round(y0), img.height - 1)
            annotations.append(((x0, y0, max(round(x1), x0 + 1), max(round(y1), y0 + 1)),
                                f"{name} {score:.2f}"))
        table = [[name, score, round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)]
                 for name, score, x0, y0, x1, y1 in dets]
        return (img, annotations), table

    def _forward(self, model, img):
        """No helper: resize per the input spec (if any) and read the model's boxes."""
        import torch

        from zoo.loading.preprocess import image_to_tensor

        inp = self.target.input
        if inp is not None and len(inp.size) == 3:
            x = image_to_tensor(img, inp)
            h, w = inp.size[1], inp.size[2]
        else:
            import numpy as np

            x = torch.from_numpy(np.asarray(img, dtype="float32") / 255.0).permute(2, 0, 1)[None]
            h, w = img.height, img.width
        try:
            out = model(x)
        except (TypeError, AssertionError, ValueError):
            out = model(list(x))          # torchvision detectors take a list of images
        return out, (img.width / w, img.height / h)


def _detections(out: Any):
    """Yield ``(box xyxy, score, label)`` from detector output.

    Accepted: ``[{"box", "score", "label"}, ...]`` (one dict a box, the predict helpers'
    form), ``{"boxes", "scores", "labels"}`` (torchvision's form), or a list of one such.
    """
    if isinstance(out, list | tuple) and (not out or "box" in out[0]):
        for d in out:
            lab = d.get("label", 0)
            yield ([float(v) for v in list(d["box"])[:4]], float(d.get("score", 1.0)),
                   int(lab) if isinstance(lab, int) else str(lab))
        return
    if isinstance(out, list | tuple) and out and isinstance(out[0], dict):
        out = out[0]
    if not isinstance(out, dict) or "boxes" not in out:
        raise ValueError("detector output is not {boxes, scores, labels}")

    def rows(v):
        return v.tolist() if hasattr(v, "tolist") else list(v)

    boxes = rows(out["boxes"])
    if boxes and not isinstance(boxes[0], list | tuple):   # batch of one, nested once more
        boxes = [boxes]
    if boxes and isinstance(boxes[0], list | tuple) and boxes[0] \
            and isinstance(boxes[0][0], list | tuple):
        boxes = boxes[0]
    scores = rows(out.get("scores", [1.0] * len(boxes)))
    labels = rows(out.get("labels", [0] * len(boxes)))
    if scores and isinstance(scores[0], list):
        scores = scores[0]
    if labels and isinstance(labels[0], list):
        labels = labels[0]
    for b, s, lab in zip(boxes, scores, labels, strict=False):
        yield [float(v) for v in b[:4]], float(s), (int(lab) if isinstance(lab, int | float)
                                                    else str(lab))


class ImageGeneration(Adapter):
    """Seed, number of images, class (for conditional models) and truncation -> image grid."""

    task = "image-generation"
    hint = "Same seed, same images. Lower truncation trades variety for typical samples."
    RANDOM_CLASS = "random"

    def classes(self) -> list[str] | None:
        t = self.target
        if t.labels:
            return list(t.labels)
        n = t.kwargs.get("num_classes") or t.kwargs.get("n_classes")
        return [str(i) for i in range(int(n))] if n else None

    def latent_dim(self, model) -> int:
        for attr in ("latent_dim", "z_dim", "nz"):
            if hasattr(model, attr):
                return int(getattr(model, attr))
        for key in ("latent_dim", "z_dim", "nz"):
            if key in self.target.kwargs:
                return int(self.target.kwargs[key])
        inp = self.target.input
        if inp is not None and len(inp.size) == 1:
            return int(inp.size[0])
        raise UsageError(f"{self.target.label}: cannot tell the latent size; declare "
                         "latent_dim in its kwargs or input = {{ size = [Z] }}")

    def inputs(self):
        gr = gradio()
        comps = [gr.Number(value=0, precision=0, label="seed"),
                 gr.Slider(1, 16, value=8, step=1, label="images")]
        classes = self.classes()
        if classes:
            comps.append(gr.Dropdown([self.RANDOM_CLASS, *classes], value=self.RANDOM_CLASS,
                                     label="class"))
        comps.append(gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="truncation"))
        return comps

    def outputs(self):
        gr = gradio()
        return [gr.Image(type="pil", label="samples", format="png")]

    def examples(self):
        cls = [self.RANDOM_CLASS] if self.classes() else []
        return [[0, 8, *cls, 1.0], [1, 1, *cls, 0.7]]

    def run(self, model, seed, n, *rest):
        import torch

        classes = self.classes()
        cls, truncation = (rest[0], rest[1]) if classes else (None, rest[0])
        try:
            seed = int(seed if seed is not None else 0)
            n = int(n if n is not None else 1)
            truncation = float(truncation if truncation is not None else 1.0)
        except (TypeError, ValueError, OverflowError):
            raise DemoInputError("seed, images and truncation must be numbers") from None
        if not -(2**63) <= seed < 2**63:     # torch seeds are 64-bit
            raise DemoInputError(f"seed must be a whole number of at most 18 digits, got "
                                 f"{seed:.3g}")
        if not 1 <= n <= 64:
            raise DemoInputError(f"images must be between 1 and 64, got {n}")
        if not 0 < truncation <= 10:
            raise DemoInputError(f"truncation must be in (0, 10], got {truncation}")
        class_id = None
        if classes and cls not in (None, "", self.RANDOM_CLASS):
            if str(cls) not in classes:
                raise DemoInputError(f"unknown class {cls!r}; choose one of the list")
            class_id = classes.index(str(cls))
        fn = task_helper(self.target)
        if fn is not None:
            # the family's contract: inputs is the seed; the answer is the tiled grid
            out = call_helper(fn, self.target, model, seed, n=n, truncation=truncation,
                              **({"class_id|label|y": class_id} if classes else {}))
            return to_pil(out)
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_dim(model), generator=g)
        if truncation < 10:
            # truncation trick: redraw latents outside [-t, t] (BigGAN's truncated normal)
            for _ in range(20):
                bad = z.abs() > truncation
                if not bad.any():
                    break
                z[bad] = torch.randn(int(bad.sum()), generator=g)
            z = z.clamp(-truncation, truncation)
        if classes:
            y = (torch.full((n,), class_id, dtype=torch.long) if class_id is not None
                 else torch.randint(0, len(classes), (n,), generator=g))
            out = model(z, y)
        else:
            out = model(z)
        return grid(tensor_to_images(out))


class ImageToImage(Adapter):
    """Image in, translated image out (CycleGAN-style generators)."""

    task = "image-to-image"

    def check(self, target: Target) -> None:
        _need_image_input(target)

    def two_way(self) -> bool:
        """Whether the model translates both ways (CycleGAN): then a direction is asked."""
        import inspect

        fn = task_helper(self.target)
        return fn is not None and "direction" in inspect.signature(fn).parameters

    def inputs(self):
        gr = gradio()
        comps = [image_input()]
        if self.two_way():
            comps.append(gr.Radio(["AB", "BA"], value="AB", label="direction (A to B, B to A)"))
        return comps

    def outputs(self):
        gr = gradio()
        return [gr.Image(type="pil", label="result", format="png")]

    def examples(self):
        files = ([f"digit_{d}.png" for d in (0, 7)] if _is_digits(self.target)
                 else ["shapes.png"])
        extra = ["AB"] if self.two_way() else []
        return [[example_path(f), *extra] for f in files]

    def run(self, model, image, direction="AB"):
        from zoo.loading.preprocess import image_to_tensor

        img = check_image(image)
        fn = task_helper(self.target)
        if fn is not None:
            out = call_helper(fn, self.target, model, img, direction=direction or "AB")
            return _fit(to_pil(out), img.size)
        inp = self.target.input
        out = model(image_to_tensor(img, inp))
        return _fit(tensor_to_images(out, mean=inp.mean, std=inp.std)[0], img.size)


def _fit(result, size, *, max_side: int = 1024):
    """Scale the model-sized output back to the upload's shape (at most ``max_side``)."""
    w, h = size
    s = min(1.0, max_side / max(w, h))
    return result.resize((max(1, round(w * s)), max(1, round(h * s))))
