"""CycleGAN (Zhu et al., 2017), compact: unpaired image-to-image translation.

Two ResNet-block generators (``G_AB``: A -> B, ``G_BA``: B -> A) and two PatchGAN
discriminators (``D_A``, ``D_B``) trained with least-squares adversarial losses plus the
cycle-consistency loss ``|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|`` (and the identity
loss). ``forward(x)`` translates A -> B. Architectures follow the paper's appendix:
c7s1-k, two stride-2 downsamplings, residual blocks, two upsamplings, c7s1-C, instance
norm and reflection padding; the discriminator is the 70x70-style PatchGAN, shallower.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm(c: int) -> nn.Module:
    return nn.InstanceNorm2d(c)


class ResnetBlock(nn.Module):
    """Two reflection-padded 3x3 convs with instance norm, added to the input."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), _norm(c), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), _norm(c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def resnet_generator(channels: int, ngf: int, n_blocks: int, n_down: int = 2) -> nn.Sequential:
    """The paper's ResNet generator: c7s1-ngf, d2ngf, d4ngf, R x n, u2ngf, ungf, c7s1-C."""
    mods: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(channels, ngf, 7), _norm(ngf),
                             nn.ReLU(True)]
    c = ngf
    for _ in range(n_down):
        mods += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), _norm(2 * c), nn.ReLU(True)]
        c *= 2
    mods += [ResnetBlock(c) for _ in range(n_blocks)]
    for _ in range(n_down):
        mods += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1),
                 _norm(c // 2), nn.ReLU(True)]
        c //= 2
    mods += [nn.ReflectionPad2d(3), nn.Conv2d(c, channels, 7), nn.Tanh()]
    return nn.Sequential(*mods)


def patch_discriminator(channels: int, ndf: int, n_layers: int) -> nn.Sequential:
    """PatchGAN: 4x4 convs, stride 2 then 1, one real/fake logit per overlapping patch."""
    mods: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    c = ndf
    for i in range(1, n_layers + 1):
        nc = ndf * min(2 ** i, 8)
        stride = 2 if i < n_layers else 1
        mods += [nn.Conv2d(c, nc, 4, stride, 1), _norm(nc), nn.LeakyReLU(0.2, True)]
        c = nc
    mods += [nn.Conv2d(c, 1, 4, 1, 1)]
    return nn.Sequential(*mods)


class CycleGAN(nn.Module):
    """Both translators and both critics; ``forward(x)`` is ``G_AB(x)``.

    ``generator`` and ``discriminator`` name the A -> B pair (``G_AB`` and ``D_B``, the
    critic of B images), so family-wide code treats CycleGAN like any other GAN.
    """

    loss = "least-squares"

    def __init__(self, G_AB: nn.Module, G_BA: nn.Module, D_A: nn.Module, D_B: nn.Module):
        super().__init__()
        self.G_AB, self.G_BA, self.D_A, self.D_B = G_AB, G_BA, D_A, D_B

    @property
    def generator(self) -> nn.Module:
        return self.G_AB

    @property
    def discriminator(self) -> nn.Module:
        return self.D_B

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.G_AB(x)

    def translate(self, x: torch.Tensor, direction: str = "AB") -> torch.Tensor:
        """``direction="AB"`` runs ``G_AB``, ``"BA"`` runs ``G_BA``."""
        if direction not in ("AB", "BA"):
            raise ValueError(f"direction must be 'AB' or 'BA', got {direction!r}")
        return self.G_AB(x) if direction == "AB" else self.G_BA(x)

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Patch logits of ``D_B`` (is ``x`` a real B image?), ``[N, 1, h, w]``."""
        return self.D_B(x)

    def cycle_loss(self, real_a: torch.Tensor, real_b: torch.Tensor) -> torch.Tensor:
        """Cycle-consistency loss ``L1(G_BA(G_AB(a)), a) + L1(G_AB(G_BA(b)), b)``."""
        return cycle_consistency_loss(self, real_a, real_b)


def cycle_consistency_loss(model: CycleGAN, real_a: torch.Tensor,
                           real_b: torch.Tensor) -> torch.Tensor:
    """The paper's cycle loss (weight it by lambda=10 in the generator objective)."""
    return (F.l1_loss(model.G_BA(model.G_AB(real_a)), real_a)
            + F.l1_loss(model.G_AB(model.G_BA(real_b)), real_b))


def identity_loss(model: CycleGAN, real_a: torch.Tensor, real_b: torch.Tensor) -> torch.Tensor:
    """``L1(G_AB(b), b) + L1(G_BA(a), a)``: keeps colours when the input is already in the
    target domain (the paper weights it 0.5 * lambda)."""
    return F.l1_loss(model.G_AB(real_b), real_b) + F.l1_loss(model.G_BA(real_a), real_a)


def cyclegan(*, channels: int = 3, ngf: int = 32, n_blocks: int = 6, ndf: int = 32,
             n_layers: int = 3, n_down: int = 2) -> CycleGAN:
    """Build a compact CycleGAN (the paper: ngf=ndf=64, 9 blocks at 256x256)."""
    return CycleGAN(resnet_generator(channels, ngf, n_blocks, n_down),
                    resnet_generator(channels, ngf, n_blocks, n_down),
                    patch_discriminator(channels, ndf, n_layers),
                    patch_discriminator(channels, ndf, n_layers))
