"""StyleGAN (Karras et al., 2019), compact: a style-based generator.

The paper's key ideas, all here: a mapping network turns ``z`` into an intermediate latent
``w``; a learned constant (not ``z``) starts the synthesis network; each layer's features
are instance-normalised and re-styled from ``w`` (AdaIN); per-layer noise inputs, scaled per
channel, add stochastic detail; and the truncation trick pulls ``w`` towards a tracked
mean ``w_avg``. Style mixing (two ``w`` for one image) is available through ``ws``.
Left out for size: equalised learning rate, progressive growing and blur filters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .nets import GAN


class PixelNorm(nn.Module):
    """Normalise each latent vector to unit average square (the paper's input to mapping)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class MappingNetwork(nn.Module):
    """``z -> w``: pixel norm then an MLP with leaky ReLUs (8 layers in the paper)."""

    def __init__(self, z_dim: int, w_dim: int, layers: int):
        super().__init__()
        mods: list[nn.Module] = [PixelNorm()]
        for i in range(layers):
            mods += [nn.Linear(z_dim if i == 0 else w_dim, w_dim), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*mods)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class NoiseInjection(nn.Module):
    """Add a single-channel noise image scaled by a learned per-channel factor.

    ``mode="random"`` draws fresh noise, ``"const"`` uses a fixed noise image stored with
    the weights (deterministic samples), ``"none"`` adds nothing.
    """

    def __init__(self, channels: int, size: int, seed: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, channels, 1, 1))
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("const_noise", torch.randn(1, 1, size, size, generator=g))

    def forward(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        if mode == "none":
            return x
        if mode == "const":
            noise = self.const_noise
        else:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device,
                                dtype=x.dtype)
        return x + self.weight * noise


class AdaIN(nn.Module):
    """Adaptive instance norm: normalise each channel, then scale and shift from ``w``."""

    def __init__(self, channels: int, w_dim: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels)
        self.style = nn.Linear(w_dim, 2 * channels)
        nn.init.zeros_(self.style.bias)  # start as plain instance norm (scale 1 + 0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        scale, shift = self.style(w).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return (1 + scale) * self.norm(x) + shift


class StyleLayer(nn.Module):
    """conv (optional) -> noise -> leaky ReLU -> AdaIN(w): one styled layer of the paper."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, size: int, seed: int,
                 conv: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1) if conv else None
        self.noise = NoiseInjection(out_ch, size, seed)
        self.act = nn.LeakyReLU(0.2)
        self.adain = AdaIN(out_ch, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        if self.conv is not None:
            x = self.conv(x)
        return self.adain(self.act(self.noise(x, noise_mode)), w)


class SynthesisNetwork(nn.Module):
    """Learned 4x4 constant, two styled layers per resolution, bilinear upsampling."""

    def __init__(self, w_dim: int, image_size: int, channels: int, width: int):
        super().__init__()
        n_up = int(math.log2(image_size)) - 2
        self.const = nn.Parameter(torch.ones(1, width, 4, 4))
        layers = [StyleLayer(width, width, w_dim, 4, 0, conv=False),
                  StyleLayer(width, width, w_dim, 4, 1)]
        size = 4
        for i in range(n_up):
            size *= 2
            layers += [StyleLayer(width, width, w_dim, size, 2 * i + 2),
                       StyleLayer(width, width, w_dim, size, 2 * i + 3)]
        self.layers = nn.ModuleList(layers)
        self.to_rgb = nn.Conv2d(width, channels, 1)

    @property
    def num_ws(self) -> int:
        return len(self.layers)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        # repeat, not expand: a view of a parameter made under no_grad confuses autograd hooks
        x = self.const.repeat(ws.shape[0], 1, 1, 1)
        for i, layer in enumerate(self.layers):
            if i >= 2 and i % 2 == 0:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = layer(x, ws[:, i], noise_mode)
        return torch.tanh(self.to_rgb(x))


class StyleGenerator(nn.Module):
    """Mapping + synthesis, with the running mean of ``w`` used by the truncation trick."""

    def __init__(self, z_dim: int, w_dim: int, mapping_layers: int, image_size: int,
                 channels: int, width: int, w_avg_beta: float = 0.995):
        super().__init__()
        self.z_dim, self.w_avg_beta = z_dim, w_avg_beta
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers)
        self.synthesis = SynthesisNetwork(w_dim, image_size, channels, width)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def map(self, z: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        """``z -> w`` (one per image), tracking ``w_avg`` while training, then truncating."""
        w = self.mapping(z)
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().mean(0), 1 - self.w_avg_beta)
        if truncation != 1.0:
            w = self.w_avg + truncation * (w - self.w_avg)
        return w

    def forward(self, z: torch.Tensor, truncation: float = 1.0,
                noise_mode: str | None = None) -> torch.Tensor:
        """Images ``[N, C, H, W]`` in ``[-1, 1]``.

        Args:
            truncation: psi of the truncation trick; 0 gives the mean-``w`` image for
                every ``z``, 1 leaves ``w`` alone.
            noise_mode: ``"random"``, ``"const"`` or ``"none"``; default random while
                training and const in eval mode, so eval samples are reproducible.
        """
        mode = noise_mode or ("random" if self.training else "const")
        w = self.map(z, truncation)
        ws = w.unsqueeze(1).expand(-1, self.synthesis.num_ws, -1)
        return self.synthesis(ws, mode)

    def mix(self, z1: torch.Tensor, z2: torch.Tensor, crossover: int,
            noise_mode: str | None = None) -> torch.Tensor:
        """Style mixing: ``z1``'s styles for the first ``crossover`` layers, ``z2``'s after."""
        mode = noise_mode or ("random" if self.training else "const")
        w1, w2 = self.map(z1), self.map(z2)
        n = self.synthesis.num_ws
        ws = torch.stack([w1 if i < crossover else w2 for i in range(n)], dim=1)
        return self.synthesis(ws, mode)


class MinibatchStdDev(nn.Module):
    """Append the mean across-batch standard deviation as one feature map (ProGAN)."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group, n)
        if n % g:
            g = 1
        y = x.reshape(g, -1, c, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [n/g]
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


def _style_discriminator(image_size: int, channels: int, width: int) -> nn.Sequential:
    n_down = int(math.log2(image_size)) - 2
    mods: list[nn.Module] = [nn.Conv2d(channels, width, 1), nn.LeakyReLU(0.2)]
    for _ in range(n_down):
        mods += [nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2),
                 nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2)]
    mods += [MinibatchStdDev(), nn.Conv2d(width + 1, width, 3, padding=1), nn.LeakyReLU(0.2),
             nn.Flatten(), nn.Linear(width * 16, width), nn.LeakyReLU(0.2), nn.Linear(width, 1)]
    return nn.Sequential(*mods)


class StyleGAN(GAN):
    """StyleGAN generator and discriminator; ``forward(z, truncation=1.0)`` samples."""

    def forward(self, z: torch.Tensor, truncation: float = 1.0,
                noise_mode: str | None = None) -> torch.Tensor:
        return self.generator(z, truncation=truncation, noise_mode=noise_mode)

    def latents(self, n: int, *, seed: int | None = None, truncation: float = 1.0) -> torch.Tensor:
        # StyleGAN truncates in w space (see forward), so z stays a plain normal draw.
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        return torch.randn(n, self.latent_dim, generator=g)

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, truncation: float = 1.0) -> torch.Tensor:
        return self(self.latents(n, seed=seed), truncation=truncation)

    @torch.no_grad()
    def update_w_avg(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """Set ``w_avg`` to the mean of ``n`` mapped latents (exact, instead of the EMA)."""
        g = torch.Generator().manual_seed(seed)
        w = self.generator.mapping(torch.randn(n, self.latent_dim, generator=g))
        self.generator.w_avg.copy_(w.mean(0))
        return self.generator.w_avg


def stylegan(*, latent_dim: int = 128, w_dim: int = 128, mapping_layers: int = 4,
             image_size: int = 32, channels: int = 3, width: int = 64) -> StyleGAN:
    """Build a compact StyleGAN for ``image_size`` x ``image_size`` images (a power of 2)."""
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of 2 >= 8, got {image_size}")
    gen = StyleGenerator(latent_dim, w_dim, mapping_layers, image_size, channels, width)
    disc = _style_discriminator(image_size, channels, width)
    return StyleGAN(gen, disc, latent_dim)
