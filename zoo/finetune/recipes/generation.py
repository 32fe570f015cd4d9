"""Generative recipes: image generators on an image folder, CycleGAN on two folders.

``image-generation`` (:class:`ImageGeneration`): ``--data`` is a folder of images (any
layout: every image below it counts), or ``digits`` / ``shapes``. Images are scaled to
the generator's output (its size and channels, pixels in ``[-1, 1]``). The loss is
adversarial for models with a discriminator (``model.discriminate(x)``, the GAN family):
each step updates the discriminator on real and generated images and the generator to
fool it, in one backward pass. Another kind of generator (a VAE, say) brings its own
``loss_sum`` by subclassing the recipe. The metric, ``fd``, is the Frechet distance between
generated samples and the held-out images in a PCA space fitted on the training images
(the FID idea at this scale; lower is better).

``image-to-image`` (:class:`ImageToImage`): ``--data`` is a folder holding two
sub-folders, domain A and domain B (alphabetical order, e.g. ``A/`` and ``B/``); the
CycleGAN losses (least squares, cycle x10, identity x5); the metric, ``cycle``, is the
mean L1 of held-out images translated there and back.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from zoo.errors import UsageError
from zoo.finetune.recipes.base import DataOptions, Recipe

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_IMAGES = 50_000


def image_files(folder: Path) -> list[Path]:
    """Every image file below ``folder`` (hidden entries skipped), in a fixed order."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder; give a folder of images")
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES
                   and f.is_file() and not any(p.startswith(".")
                                               for p in f.relative_to(folder).parts))
    if not files:
        raise UsageError(f"{folder}: holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if len(files) > MAX_IMAGES:
        raise UsageError(f"{folder}: holds {len(files):,} images; give at most "
                         f"{MAX_IMAGES:,} (a sample of them)")
    return files


def load_images(files: list[Path], shape: tuple[int, int, int]) -> torch.Tensor:
    """Images as ``[N, C, H, W]`` floats in ``[-1, 1]`` at ``shape`` (bilinear resize)."""
    from PIL import Image

    from zoo.loading.preprocess import load_image

    c, h, w = shape
    out = torch.empty(len(files), c, h, w)
    for i, f in enumerate(files):
        img = load_image(f).convert("L" if c == 1 else "RGB").resize((w, h),
                                                                     Image.Resampling.BILINEAR)
        x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).float()
        out[i] = x.view(h, w, -1).permute(2, 0, 1)[:c] / 127.5 - 1
    return out


def fit(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """``[N, C', H', W']`` images in ``[-1, 1]`` to ``shape`` (channels, then size)."""
    c, h, w = shape
    if x.shape[1] != c:
        x = x.mean(1, keepdim=True) if c == 1 else x[:, :1].expand(-1, c, -1, -1)
    if tuple(x.shape[-2:]) != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False).clamp(-1, 1)
    return x.contiguous()


def sample_set(name: str) -> torch.Tensor | None:
    """A built-in set of images in ``[-1, 1]``: ``digits`` or ``shapes`` (else None)."""
    from zoo.finetune import data as ft_data

    if name == "digits":
        return ft_data._digits()[0] * 2 - 1
    if name == "shapes":
        return ft_data._shapes()[0] * 2 - 1
    return None


@contextlib.contextmanager
def frozen(module: torch.nn.Module):
    """``module``'s parameters pass gradients through but receive none, for a while: the
    generator's loss must move the generator only."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class FrechetJudge:
    """Frechet distance between two image sets in a PCA space of reference images."""

    def __init__(self, reference: torch.Tensor, components: int = 20):
        feats = self.features(reference)
        self.mean = feats.mean(0)
        k = max(1, min(components, feats.shape[0] - 1, feats.shape[1]))
        _, _, v = torch.linalg.svd(feats - self.mean, full_matrices=False)
        self.basis = v[:k].T

    @staticmethod
    def features(x: torch.Tensor) -> torch.Tensor:
        x = x.detach().float().cpu()
        if max(x.shape[-2:]) > 16:
            x = F.adaptive_avg_pool2d(x, 16)
        return x.flatten(1).double()

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> float:
        from scipy import linalg

        fa = ((self.features(a) - self.mean) @ self.basis).numpy()
        fb = ((self.features(b) - self.mean) @ self.basis).numpy()
        import numpy as np

        mu_a, mu_b = fa.mean(0), fb.mean(0)
        ca = np.atleast_2d(np.cov(fa, rowvar=False))
        cb = np.atleast_2d(np.cov(fb, rowvar=False))
        covmean = linalg.sqrtm(ca @ cb)
        covmean = covmean.real if np.iscomplexobj(covmean) else covmean
        return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * covmean))


class ImageGeneration(Recipe):
    """Generators on images (see the module doc); subclasses change :meth:`loss_sum`."""

    task = "image-generation"
    metric = "fd"
    modes = {"fd": "min", "loss": "min"}
    lr = 2e-4
    optimizer_options = {"betas": (0.5, 0.999)}     # the DCGAN paper's Adam
    data_help = "a folder of images (or digits, shapes)"
    #: generated samples per evaluation (the covariance needs more than the components)
    eval_samples = 256

    def prepare(self, data: Any, loaded: Any, options: DataOptions):
        from zoo.finetune.data import _stratified_split, _subsample
        from zoo.tasks.generation import sample

        probe = sample(loaded.model, loaded.spec, loaded.tag, 1, seed=0)
        if probe.dim() != 4:
            raise UsageError(f"'{loaded.ref}' generates {tuple(probe.shape)}, not images "
                             "[N, C, H, W]; see the generation interface (docs/plugins.md)")
        shape = tuple(probe.shape[1:])
        x, labels = self._images(data, shape)
        if options.val_data is not None:
            vx, _ = self._images(options.val_data, shape)
            tr, va = list(range(len(x))), None
        else:
            tr, va = _stratified_split(labels, options.val_fraction)
            vx = x[va]
        ids = torch.arange(len(x))
        train_x, _ = _subsample(x[tr], ids[tr], options.limit, seed=1)
        vx, _ = _subsample(vx, torch.arange(len(vx)), options.val_limit, seed=2)
        if len(train_x) < 2:
            raise UsageError(f"data '{data}': {len(train_x)} training image(s); give at "
                             "least a few dozen")
        self.judge = FrechetJudge(train_x)
        self.spec, self.tag = loaded.spec, loaded.tag
        return self.task_data(self.split({"x": train_x}),
                              self.split({"x": vx}) if len(vx) >= 2 else None,
                              name=str(data), notes={"shape": shape})

    def _images(self, data: Any, shape: tuple[int, int, int]):
        """``(images, labels)``: labels are the sub-folder names (for a stratified split)."""
        builtin = sample_set(str(data))
        if builtin is not None:
            return fit(builtin, shape), ["all"] * len(builtin)
        folder = Path(str(data)).expanduser()
        files = image_files(folder)
        return load_images(files, shape), [str(f.parent.relative_to(folder)) for f in files]

    def setup(self, loaded: Any, data: Any, out: Path):
        from zoo.tasks.generation import num_classes

        if type(self).loss_sum is ImageGeneration.loss_sum:
            if not callable(getattr(loaded.model, "discriminate", None)):
                raise UsageError(f"'{loaded.ref}' has no discriminator (discriminate(x)); "
                                 "zoo's image-generation recipe trains GANs. A plugin's "
                                 "generator brings its own recipe (see docs/plugins.md)")
            if num_classes(loaded.spec, loaded.tag):
                raise UsageError(f"'{loaded.ref}' is class-conditional; zoo's recipe trains "
                                 "unconditional generators only (forward(z)) for now")
        return loaded.model, dict(loaded.kwargs)

    def loss_sum(self, model: Any, batch: Any):
        from zoo.plugins.gan.training import d_loss, g_loss

        real = batch.inputs["x"]
        kind = getattr(model, "loss", "non-saturating")
        z = torch.randn(len(real), model.latent_dim, device=real.device)
        fake = model(z)
        d = d_loss(kind, model.discriminate(real), model.discriminate(fake.detach()))
        with frozen(model.discriminator):
            g = g_loss(kind, model.discriminate(fake))
        return (d + g) * len(real)

    def evaluate(self, model: Any, data: Any, split: Any) -> dict[str, float]:
        from zoo.tasks.generation import sample

        fake = sample(model, self.spec, self.tag, max(self.eval_samples, len(split)), seed=0)
        fd = self.judge.distance(fake.cpu(), split.inputs["x"].cpu())
        return {"fd": round(fd, 4), "loss": self.val_loss(model, split)}

    def val_loss(self, model: Any, split: Any) -> float:
        """The training loss on held-out images, with fixed noise."""
        with torch.random.fork_rng():
            torch.manual_seed(0)
            total = sum(float(self.loss_sum(model, split.take(range(i, min(i + 256,
                                                                           len(split))))))
                        for i in range(0, len(split), 256))
        return total / max(len(split), 1)


class ImageToImage(Recipe):
    """CycleGAN on two image folders (see the module doc)."""

    task = "image-to-image"
    metric = "cycle"
    modes = {"cycle": "min", "loss": "min"}
    lr = 2e-4
    optimizer_options = {"betas": (0.5, 0.999)}
    data_help = "a folder with two sub-folders of images: domain A and domain B"
    lambda_cycle, lambda_id = 10.0, 0.5

    def prepare(self, data: Any, loaded: Any, options: DataOptions):
        from zoo.finetune.data import _subsample

        if not all(hasattr(loaded.model, n) for n in ("G_AB", "G_BA", "D_A", "D_B")):
            raise UsageError(f"'{loaded.ref}' is not a CycleGAN (G_AB, G_BA, D_A, D_B); zoo's "
                             "image-to-image recipe trains CycleGANs")
        inp = loaded.spec.input_for(loaded.tag)
        if inp is None or len(inp.size) != 3:
            raise UsageError(f"'{loaded.ref}' declares no image input [C, H, W]")
        shape = tuple(inp.size)
        folder = Path(str(data)).expanduser()
        domains = sorted(p for p in folder.iterdir() if p.is_dir()
                         and not p.name.startswith(".")) if folder.is_dir() else []
        if len(domains) != 2:
            raise UsageError(f"{folder}: needs exactly two sub-folders of images, domain A "
                             f"and domain B (found {len(domains)})")
        a, b = (load_images(image_files(d), shape) for d in domains)
        n = min(len(a), len(b))      # unpaired: the i-th A image meets the i-th B image
        a, b = a[torch.randperm(len(a), generator=torch.Generator().manual_seed(0))[:n]], \
            b[torch.randperm(len(b), generator=torch.Generator().manual_seed(1))[:n]]
        k = max(1, int(round(n * options.val_fraction))) if n > 2 else 0
        train = self.split({"a": a[k:], "b": b[k:]})
        ids = torch.arange(len(train))
        keep, _ = _subsample(ids, ids, options.limit, seed=1)
        val = self.split({"a": a[:k], "b": b[:k]}) if k else None
        return self.task_data(train.take(keep), val, labels=[d.name for d in domains],
                              name=str(data))

    def loss_sum(self, model: Any, batch: Any):
        from zoo.plugins.gan.cyclegan import cycle_consistency_loss, identity_loss
        from zoo.plugins.gan.training import d_loss, g_loss

        a, b = batch.inputs["a"], batch.inputs["b"]
        fake_b, fake_a = model.G_AB(a), model.G_BA(b)
        with frozen(model.D_A), frozen(model.D_B):
            adv = g_loss("least-squares", model.D_B(fake_b)) + \
                g_loss("least-squares", model.D_A(fake_a))
        g = adv + self.lambda_cycle * cycle_consistency_loss(model, a, b)
        if self.lambda_id:
            g = g + self.lambda_cycle * self.lambda_id * identity_loss(model, a, b)
        d = (d_loss("least-squares", model.D_A(a), model.D_A(fake_a.detach()))
             + d_loss("least-squares", model.D_B(b), model.D_B(fake_b.detach())))
        return (g + d) * len(a)

    def evaluate(self, model: Any, data: Any, split: Any) -> dict[str, float]:
        from zoo.plugins.gan.cyclegan import cycle_consistency_loss

        a, b = split.inputs["a"], split.inputs["b"]
        cycle = float(cycle_consistency_loss(model, a, b)) / 2
        return {"cycle": round(cycle, 4), "loss": float(self.loss_sum(model, split)) / len(a)}

    def config(self, data: Any) -> dict[str, Any]:
        return {"domains": list(data.labels)}
