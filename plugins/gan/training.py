"""Training helpers for the GAN family: losses, one adversarial step, digits data and a judge.

Used by ``scripts/train_*gan*_digits.py`` and the tests. The judge scores generated digits
without any network download: a PCA and a logistic-regression digit classifier fitted
(deterministically, in about a second) on scikit-learn's digits training split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .cyclegan import CycleGAN, cycle_consistency_loss, identity_loss

LOSSES = ("non-saturating", "hinge", "least-squares")


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss on real and fake logits for ``kind`` (see ``LOSSES``)."""
    if kind == "non-saturating":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "least-squares":
        return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())
    raise ValueError(f"unknown GAN loss {kind!r}; use one of {LOSSES}")


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss on the discriminator's logits for generated images."""
    if kind == "non-saturating":
        return F.softplus(-fake).mean()
    if kind == "hinge":
        return -fake.mean()
    if kind == "least-squares":
        return (fake - 1).pow(2).mean()
    raise ValueError(f"unknown GAN loss {kind!r}; use one of {LOSSES}")


def adam_pair(model: Any, lr_g: float = 2e-4, lr_d: float = 2e-4,
              betas: tuple[float, float] = (0.5, 0.999)):
    """The DCGAN paper's optimisers: Adam(lr 2e-4, beta1 0.5) for G and for D."""
    return (torch.optim.Adam(model.generator.parameters(), lr=lr_g, betas=betas),
            torch.optim.Adam(model.discriminator.parameters(), lr=lr_d, betas=betas))


def d_step(model: Any, real: torch.Tensor, z: torch.Tensor, opt_d, y=None) -> float:
    """One discriminator update on real images and generated ones from ``z``."""
    args = (z,) if y is None else (z, y)
    with torch.no_grad():
        fake = model(*args)
    loss = d_loss(model.loss, model.discriminate(real, y), model.discriminate(fake, y))
    opt_d.zero_grad(set_to_none=True)
    loss.backward()
    opt_d.step()
    return float(loss.detach())


def g_step(model: Any, z: torch.Tensor, opt_g, y=None) -> float:
    """One generator update: make the discriminator call ``model(z)`` real."""
    args = (z,) if y is None else (z, y)
    loss = g_loss(model.loss, model.discriminate(model(*args), y))
    opt_g.zero_grad(set_to_none=True)
    loss.backward()
    opt_g.step()
    return float(loss.detach())


def gan_losses(model: Any, real: torch.Tensor, z: torch.Tensor, y=None) -> tuple[float, float]:
    """``(d_loss, g_loss)`` of a batch, without updating anything."""
    args = (z,) if y is None else (z, y)
    with torch.no_grad():
        fake = model(*args)
        d = d_loss(model.loss, model.discriminate(real, y), model.discriminate(fake, y))
        g = g_loss(model.loss, model.discriminate(fake, y))
    return float(d), float(g)


def cyclegan_step(model: CycleGAN, real_a: torch.Tensor, real_b: torch.Tensor, opt_g, opt_d, *,
                  lambda_cycle: float = 10.0, lambda_id: float = 0.5) -> dict[str, float]:
    """One CycleGAN update: both generators (LSGAN + cycle + identity), then both critics."""
    fake_b, fake_a = model.G_AB(real_a), model.G_BA(real_b)
    adv = g_loss("least-squares", model.D_B(fake_b)) + g_loss("least-squares", model.D_A(fake_a))
    cyc = cycle_consistency_loss(model, real_a, real_b)
    idt = identity_loss(model, real_a, real_b) if lambda_id else torch.zeros(())
    g = adv + lambda_cycle * cyc + lambda_cycle * lambda_id * idt
    opt_g.zero_grad(set_to_none=True)
    g.backward()
    opt_g.step()
    d = (d_loss("least-squares", model.D_A(real_a), model.D_A(fake_a.detach()))
         + d_loss("least-squares", model.D_B(real_b), model.D_B(fake_b.detach())))
    opt_d.zero_grad(set_to_none=True)
    d.backward()
    opt_d.step()
    return {"g": float(g.detach()), "d": float(d.detach()), "cycle": float(cyc.detach())}


def cyclegan_optimizers(model: CycleGAN, lr: float = 2e-4):
    """Adam(lr 2e-4, beta1 0.5) over both generators, and over both discriminators."""
    gp = [*model.G_AB.parameters(), *model.G_BA.parameters()]
    dp = [*model.D_A.parameters(), *model.D_B.parameters()]
    return (torch.optim.Adam(gp, lr=lr, betas=(0.5, 0.999)),
            torch.optim.Adam(dp, lr=lr, betas=(0.5, 0.999)))


# -- data ---------------------------------------------------------------------------------

def digits(image_size: int = 8, *, seed: int = 0, test_size: float = 0.2):
    """scikit-learn's digits as ``[N, 1, S, S]`` floats in ``[-1, 1]``, stratified split.

    Returns ``(x_train, y_train, x_test, y_test)``; sizes other than 8 are bilinear
    upsamples of the 8x8 originals.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0
    y = torch.tensor(data.target, dtype=torch.long)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_size, random_state=seed, stratify=data.target)
    x = resize(x, image_size)
    return x[tr], y[tr], x[te], y[te]


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of a batch in ``[-1, 1]`` (identity when the size already fits)."""
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(-1, 1)


def edges(x: torch.Tensor) -> torch.Tensor:
    """Outline of the ink: morphological gradient (3x3 dilation minus erosion), in [-1, 1].

    CycleGAN's synthetic domain B for digits: each digit has one true counterpart,
    so a translation can be scored against it.
    """
    u = (x + 1) / 2
    grad = F.max_pool2d(u, 3, 1, 1) + F.max_pool2d(-u, 3, 1, 1)
    return grad.clamp(0, 1) * 2 - 1


# -- sample quality ------------------------------------------------------------------------

class DigitJudge:
    """Scores a batch of generated digits against scikit-learn's digits.

    ``fd``: Frechet distance between Gaussians fitted to PCA-20 features of the samples and
    of the real training digits (lower is better; the "FID" idea with a digits-sized
    feature space). ``confidence``: a logistic-regression digit classifier's mean max
    probability. ``classes``: effective number of classes predicted (exp of the entropy of
    the predicted-class histogram; 10 means every digit equally often). Images of any size
    are average-pooled to 8x8 first.
    """

    def __init__(self, seed: int = 0):
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression

        x, y, _, _ = digits(8, seed=seed)
        feats = self._pixels(x)
        self.pca = PCA(n_components=20, random_state=seed).fit(feats)
        real = self.pca.transform(feats)
        self.mu, self.cov = real.mean(0), np.cov(real, rowvar=False)
        self.clf = LogisticRegression(max_iter=2000, C=0.5).fit(feats, y.numpy())

    @staticmethod
    def _pixels(images: torch.Tensor) -> np.ndarray:
        x = images.detach().float()
        if x.shape[1] != 1:
            x = x.mean(dim=1, keepdim=True)
        if x.shape[-1] != 8:
            x = F.adaptive_avg_pool2d(x, 8)
        return ((x.clamp(-1, 1) + 1) / 2).reshape(len(x), 64).numpy().astype(np.float64)

    def score(self, images: torch.Tensor) -> dict[str, float]:
        """``{"fd", "confidence", "classes"}`` for images ``[N, 1, H, W]`` in ``[-1, 1]``."""
        from scipy import linalg

        px = self._pixels(images)
        f = self.pca.transform(px)
        mu, cov = f.mean(0), np.cov(f, rowvar=False)
        covmean = linalg.sqrtm(self.cov @ cov)
        if np.iscomplexobj(covmean):
            covmean = covmean.real
        fd = float(((mu - self.mu) ** 2).sum() + np.trace(self.cov + cov - 2 * covmean))
        probs = self.clf.predict_proba(px)
        hist = np.bincount(probs.argmax(1), minlength=10) / len(px)
        nz = hist[hist > 0]
        return {"fd": round(fd, 4), "confidence": round(float(probs.max(1).mean()), 4),
                "classes": round(float(np.exp(-(nz * np.log(nz)).sum())), 4)}


# -- shared training loop and evaluation of the digits scripts ------------------------------

#: seed and number of the samples every sample-quality figure is computed on
EVAL_SEED, EVAL_SAMPLES = 2026, 1000


def train_noise_gan(model: Any, x: torch.Tensor, *, epochs: int, batch_size: int = 64,
                    seed: int = 0, lr_g: float = 2e-4, lr_d: float = 2e-4,
                    y: torch.Tensor | None = None, log_every: int = 0) -> list[dict[str, float]]:
    """Train a noise-to-image GAN on images ``x`` (one D step then one G step per batch).

    Deterministic for a given seed. Returns one ``{"epoch", "d", "g"}`` record per epoch.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    opt_g, opt_d = adam_pair(model, lr_g, lr_d)
    model.train()
    history = []
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        d_sum = g_sum = 0.0
        steps = 0
        for i in range(0, len(x) - batch_size + 1 if len(x) >= batch_size else 1, batch_size):
            idx = perm[i:i + batch_size]
            real, yy = x[idx], (y[idx] if y is not None else None)
            z = torch.randn(len(idx), model.latent_dim, generator=g)
            d_sum += d_step(model, real, z, opt_d, yy)
            z = torch.randn(len(idx), model.latent_dim, generator=g)
            g_sum += g_step(model, z, opt_g, yy)
            steps += 1
        history.append({"epoch": epoch + 1, "d": d_sum / steps, "g": g_sum / steps})
        if log_every and (epoch + 1) % log_every == 0:
            print(f"epoch {epoch + 1}: d {d_sum / steps:.3f}  g {g_sum / steps:.3f}", flush=True)
    model.eval()
    return history


def sample_quality(model: Any, judge: DigitJudge, *, n: int = EVAL_SAMPLES,
                   seed: int = EVAL_SEED) -> dict[str, float]:
    """The judge's scores on ``n`` samples drawn with ``seed`` in eval mode."""
    was = model.training
    model.eval()
    try:
        return judge.score(model.sample(n, seed=seed))
    finally:
        model.train(was)


def start_digits_script(argv: list[str] | None, *, name: str, epochs: int, description: str,
                        image_size: int, batch_size: int = 64):
    """Parse a digits training script's command line and load its data.

    Options: ``--epochs``, ``--subset`` (train on the first N digits), ``--out`` (folder of
    ``NAME.safetensors``), ``--image`` (the picture), ``--seed``, ``--batch-size``. Returns
    ``(args, x_train, x_test)``: digits at ``image_size`` in ``[-1, 1]`` (split seed 0);
    ``args.started`` is the start time. Runs on one thread (shared CPUs).
    """
    import argparse
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--subset", type=int, default=0, help="train on the first N digits only")
    ap.add_argument("--out", type=Path, default=root / "zoo" / "trained")
    ap.add_argument("--image", type=Path, default=root / "docs" / "images" / f"{name}.png")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=batch_size)
    args = ap.parse_args(argv)
    args.started = time.time()
    torch.set_num_threads(1)
    x, _, x_test, _ = digits(image_size, seed=0)
    return args, (x[: args.subset] if args.subset else x), x_test


def finish_digits_script(model: Any, args, *, stem: str, figures: dict[str, dict[str, float]],
                         grid: np.ndarray, **entry: Any) -> dict:
    """Ship ``model`` as ``args.out/STEM.safetensors``, save the picture ``grid`` (uint8
    RGB) to ``args.image``, print and return the figures and where the files went.

    ``figures["trained"]`` become the catalog metrics; the others (random init, real
    digits...) are references for the description. ``entry`` is the rest of the catalog
    entry (``name``, ``tag``, ``kwargs``, ``dataset``...), as :func:`zoo.shipping.ship`
    takes it.
    """
    import json
    import time

    from PIL import Image

    from zoo.shipping import ship

    shipped = ship(model, args.out / f"{stem}.safetensors", metrics=figures["trained"], **entry)
    args.image.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(args.image)
    result = {**figures, "weights": str(shipped.path), "bytes": shipped.bytes,
              "sha256": shipped.sha256, "image": str(args.image),
              "seconds": round(time.time() - args.started, 1)}
    print(json.dumps(result, indent=2))
    return result


def run_digits_script(argv: list[str] | None, *, name: str, catalog: str, builder: Any,
                      kwargs: dict[str, Any], epochs: int, description: str,
                      lr_g: float = 2e-4, lr_d: float = 2e-4, batch_size: int = 64) -> dict:
    """The body of ``scripts/train_{gan,dcgan}_digits.py``: train, score, save, report.

    Writes ``OUT/NAME.safetensors`` and the sample grid ``IMAGE``; prints the trained,
    random-init and real held-out sample-quality figures and the catalog lines to update.
    """
    from .sampling import sample_grid

    args, x, x_test = start_digits_script(argv, name=name, epochs=epochs,
                                          description=description, batch_size=batch_size,
                                          image_size=kwargs.get("image_size", 8))
    judge = DigitJudge()
    torch.manual_seed(args.seed)
    model = builder(**kwargs)
    random_init = sample_quality(model, judge)
    train_noise_gan(model, x, epochs=args.epochs, seed=args.seed, lr_g=lr_g, lr_d=lr_d,
                    batch_size=args.batch_size, log_every=max(1, args.epochs // 10))
    figures = {"trained": sample_quality(model, judge), "random_init": random_init,
               "real_heldout": judge.score(x_test)}
    grid = sample_grid(model, seed=0, n=64, scale=max(1, 32 // x.shape[-1]))
    return finish_digits_script(model, args, stem=name, figures=figures, grid=grid,
                                name=catalog, tag="digits", kwargs=kwargs,
                                dataset="sklearn-digits",
                                fields={"input": {"size": [kwargs["latent_dim"]]}})
