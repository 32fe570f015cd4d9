"""GAN (Goodfellow et al., 2014) and DCGAN (Radford et al., 2015), compact and faithful.

Each model is one ``nn.Module`` holding ``generator`` and ``discriminator``;
``forward(z)`` samples images from latent vectors, so ``zoo get`` can run it.
"""

from __future__ import annotations

import torch
from torch import nn


def truncated_normal(shape: tuple[int, ...], *, truncation: float = 1.0, bound: float = 2.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Latents ``truncation * z`` with ``z ~ N(0, 1)`` truncated to ``[-bound, bound]``.

    The truncation trick of BigGAN (Brock et al., 2018): values outside the bound are
    redrawn, then the whole vector is scaled; ``truncation=0`` gives the all-zero latent
    (the "average" sample), smaller values trade variety for fidelity.
    """
    z = torch.randn(shape, generator=generator)
    for _ in range(100):  # redraw the tails; P(|z|>2) = 4.6%, so this ends fast
        out = z.abs() > bound
        if not out.any():
            break
        z[out] = torch.randn(int(out.sum()), generator=generator)
    return z.clamp_(-bound, bound) * truncation


class GAN(nn.Module):
    """A pair of networks; ``forward(z)`` is the generator, ``discriminate(x)`` the critic."""

    #: the adversarial loss the family's training helpers use for this model
    loss = "non-saturating"

    def __init__(self, generator: nn.Module, discriminator: nn.Module, latent_dim: int):
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Real/fake logits ``[N, 1]`` (``y`` is accepted for a uniform API and ignored)."""
        return self.discriminator(x)

    def latents(self, n: int, *, seed: int | None = None, truncation: float = 1.0) -> torch.Tensor:
        """``n`` latent vectors, reproducible with ``seed``, truncated as in BigGAN."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        if truncation >= 1.0:
            return torch.randn(n, self.latent_dim, generator=g)
        return truncated_normal((n, self.latent_dim), truncation=truncation, generator=g)

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, truncation: float = 1.0) -> torch.Tensor:
        """``n`` images in ``[-1, 1]``, shape ``[n, C, H, W]``."""
        return self(self.latents(n, seed=seed, truncation=truncation))


def mlp_gan(*, latent_dim: int = 64, image_size: int = 8, channels: int = 1,
            hidden: int = 256) -> GAN:
    """The original MLP GAN: fully connected generator (tanh out) and discriminator."""
    n = channels * image_size * image_size
    gen = nn.Sequential(
        nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.2),
        nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
        nn.Linear(hidden, n), nn.Tanh(), nn.Unflatten(1, (channels, image_size, image_size)),
    )
    disc = nn.Sequential(
        nn.Flatten(), nn.Linear(n, hidden), nn.LeakyReLU(0.2),
        nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1),
    )
    return GAN(gen, disc, latent_dim)


def dcgan(*, latent_dim: int = 100, image_size: int = 32, channels: int = 1,
          width: int = 64) -> GAN:
    """DCGAN: strided transposed convs with batch norm and ReLU in G; strided convs with
    LeakyReLU in D; no pooling, no fully connected hidden layers."""
    if image_size not in (16, 32, 64):
        raise ValueError(f"image_size must be 16, 32 or 64, got {image_size}")
    ups = {16: 2, 32: 3, 64: 4}[image_size]
    layers: list[nn.Module] = [nn.Unflatten(1, (latent_dim, 1, 1)),
                               nn.ConvTranspose2d(latent_dim, width * 2 ** (ups - 1), 4, 1, 0,
                                                  bias=False),
                               nn.BatchNorm2d(width * 2 ** (ups - 1)), nn.ReLU(True)]
    for i in range(ups - 1, 0, -1):
        layers += [nn.ConvTranspose2d(width * 2 ** i, width * 2 ** (i - 1), 4, 2, 1, bias=False),
                   nn.BatchNorm2d(width * 2 ** (i - 1)), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
    disc: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1, bias=False),
                             nn.LeakyReLU(0.2, True)]
    for i in range(ups - 1):
        disc += [nn.Conv2d(width * 2 ** i, width * 2 ** (i + 1), 4, 2, 1, bias=False),
                 nn.BatchNorm2d(width * 2 ** (i + 1)), nn.LeakyReLU(0.2, True)]
    disc += [nn.Conv2d(width * 2 ** (ups - 1), 1, 4, 1, 0, bias=False), nn.Flatten()]
    model = GAN(nn.Sequential(*layers), nn.Sequential(*disc), latent_dim)
    _dcgan_init(model)
    return model


def _dcgan_init(model: nn.Module) -> None:
    # The paper's init: N(0, 0.02) for convs, N(1, 0.02) for batch-norm scales.
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
