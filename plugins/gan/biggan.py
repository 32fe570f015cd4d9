"""BigGAN (Brock et al., 2018), compact: class-conditional GAN with self-attention.

Key ideas kept: residual generator blocks whose batch norms take their gain and bias from
the class (conditional batch norm); one class embedding *shared* by every block,
concatenated with a chunk of ``z`` per block (hierarchical latent space); a SAGAN
self-attention block; spectral norm on the weights of G and D; a projection discriminator;
hinge loss; and the truncation trick (``zoo.plugins.gan.nets.truncated_normal``).
Left out for size: orthogonal regularisation, EMA of G weights, "deep" variant blocks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .nets import GAN, truncated_normal


class _SpectralNorm:
    """Divide ``weight`` by its largest singular value, estimated by one power iteration
    per training forward (Miyato et al., 2018).

    Written out rather than using ``torch.nn.utils.parametrizations.spectral_norm``: that
    one's parametrization module breaks ``FlopCounterMode`` under ``inference_mode``, which
    ``zoo.loading.build.summarize`` uses.
    """

    weight: torch.Tensor

    def _init_sn(self) -> None:
        w = self.weight.detach().flatten(1)
        g = torch.Generator().manual_seed(w.shape[0] * 7919 + w.shape[1])
        u = F.normalize(torch.randn(w.shape[0], generator=g), dim=0)
        self.register_buffer("sn_u", u)  # type: ignore[attr-defined]
        self.register_buffer("sn_v", F.normalize(w.t() @ u, dim=0))  # type: ignore[attr-defined]

    def sn_weight(self) -> torch.Tensor:
        w = self.weight.flatten(1)
        if self.training:  # type: ignore[attr-defined]
            with torch.no_grad():
                v = F.normalize(w.t() @ self.sn_u, dim=0, eps=1e-12)
                self.sn_u.copy_(F.normalize(w @ v, dim=0, eps=1e-12))
                self.sn_v.copy_(v)
        # clones: a second forward before backward must not change what autograd saved
        sigma = self.sn_u.clone() @ (w @ self.sn_v.clone())
        return self.weight / sigma


class SNConv2d(nn.Conv2d, _SpectralNorm):
    """Conv2d with spectral normalisation."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_sn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.sn_weight(), self.bias)


class SNLinear(nn.Linear, _SpectralNorm):
    """Linear with spectral normalisation."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_sn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.sn_weight(), self.bias)


class SNEmbedding(nn.Embedding, _SpectralNorm):
    """Embedding with spectral normalisation (the projection discriminator's class table)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_sn()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return F.embedding(y, self.sn_weight())


def _sn_conv(i: int, o: int, k: int = 3, bias: bool = True) -> nn.Module:
    return SNConv2d(i, o, k, padding=k // 2, bias=bias)


class ConditionalBatchNorm(nn.Module):
    """Batch norm without affine terms; gain ``1 + W_g c`` and bias ``W_b c`` from ``c``."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(cond_dim, channels, bias=False)
        self.bias = nn.Linear(cond_dim, channels, bias=False)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        g = 1 + self.gain(c)[:, :, None, None]
        b = self.bias(c)[:, :, None, None]
        return self.bn(x) * g + b


class SelfAttention(nn.Module):
    """SAGAN attention: theta/phi/g 1x1 convs, pooled keys and values, gamma starts at 0."""

    def __init__(self, channels: int):
        super().__init__()
        self.theta = _sn_conv(channels, channels // 8, 1, bias=False)
        self.phi = _sn_conv(channels, channels // 8, 1, bias=False)
        self.g = _sn_conv(channels, channels // 2, 1, bias=False)
        self.o = _sn_conv(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        theta = self.theta(x).flatten(2)                          # [n, c/8, hw]
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)             # [n, c/8, hw/4]
        g = F.max_pool2d(self.g(x), 2).flatten(2)                 # [n, c/2, hw/4]
        beta = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # [n, hw, hw/4]
        o = (g @ beta.transpose(1, 2)).view(n, c // 2, h, w)
        return x + self.gamma * self.o(o)


class GBlock(nn.Module):
    """Residual up-block: CBN-ReLU-up-conv-CBN-ReLU-conv, with an upsampled 1x1 skip."""

    def __init__(self, i: int, o: int, cond_dim: int):
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm(i, cond_dim), ConditionalBatchNorm(o, cond_dim)
        self.conv1, self.conv2 = _sn_conv(i, o), _sn_conv(o, o)
        self.skip = _sn_conv(i, o, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.skip(F.interpolate(x, scale_factor=2))


class BigGenerator(nn.Module):
    """``(z, y) -> image``: z is split into one chunk per block plus one for the input."""

    def __init__(self, latent_dim: int, num_classes: int, shared_dim: int, image_size: int,
                 channels: int, width: int, attention: int):
        super().__init__()
        self.n_blocks = int(math.log2(image_size)) - 2
        if latent_dim % (self.n_blocks + 1):
            raise ValueError(f"latent_dim {latent_dim} must split into {self.n_blocks + 1} "
                             "equal chunks (one per block plus one)")
        self.chunk = latent_dim // (self.n_blocks + 1)
        self.num_classes = num_classes
        self.shared = nn.Embedding(num_classes, shared_dim)
        chans = [width * min(2 ** (self.n_blocks - i), 8) for i in range(self.n_blocks + 1)]
        self.linear = SNLinear(self.chunk, chans[0] * 16)
        self.blocks = nn.ModuleList()
        self.attn_at: int | None = None
        size = 4
        for i in range(self.n_blocks):
            self.blocks.append(GBlock(chans[i], chans[i + 1], shared_dim + self.chunk))
            size *= 2
            if size == attention:
                self.attn_at = i
                self.attention = SelfAttention(chans[i + 1])
        self.out_bn = nn.BatchNorm2d(chans[-1])
        self.out_conv = _sn_conv(chans[-1], channels)
        self.width0 = chans[0]

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        zs = z.split(self.chunk, dim=1)
        shared = self.shared(y)
        h = self.linear(zs[0]).view(z.shape[0], self.width0, 4, 4)
        for i, block in enumerate(self.blocks):
            h = block(h, torch.cat([shared, zs[i + 1]], dim=1))
            if i == self.attn_at:
                h = self.attention(h)
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


class DBlock(nn.Module):
    """Residual down-block: (ReLU)-conv-ReLU-conv-avgpool, with a 1x1 conv + pool skip."""

    def __init__(self, i: int, o: int, preactivation: bool = True):
        super().__init__()
        self.pre = preactivation
        self.conv1, self.conv2 = _sn_conv(i, o), _sn_conv(o, o)
        self.skip = _sn_conv(i, o, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.pre else x
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        return h + F.avg_pool2d(self.skip(x), 2)


class ProjectionDiscriminator(nn.Module):
    """Residual D ending in sum pooling; logit = linear(h) + <embed(y), h> (Miyato 2018)."""

    def __init__(self, num_classes: int, image_size: int, channels: int, width: int,
                 attention: int):
        super().__init__()
        n = int(math.log2(image_size)) - 2
        chans = [width * min(2 ** i, 8) for i in range(n + 1)]
        self.blocks = nn.ModuleList()
        self.attn_at: int | None = None
        size, prev = image_size, channels
        for i in range(n):
            self.blocks.append(DBlock(prev, chans[i], preactivation=i > 0))
            prev, size = chans[i], size // 2
            if size == attention:
                self.attn_at = i
                self.attention = SelfAttention(prev)
        self.linear = SNLinear(prev, 1)
        self.embed = SNEmbedding(num_classes, prev)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == self.attn_at:
                h = self.attention(h)
        h = F.relu(h).sum(dim=(2, 3))
        return self.linear(h) + (self.embed(y) * h).sum(dim=1, keepdim=True)


class BigGAN(GAN):
    """BigGAN generator and projection discriminator; ``forward(z, y)`` samples class ``y``."""

    loss = "hinge"

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.generator(z, y)

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            raise ValueError("BigGAN's discriminator is class-conditional; pass y")
        return self.discriminator(x, y)

    @property
    def num_classes(self) -> int:
        return self.generator.num_classes

    def latents(self, n: int, *, seed: int | None = None, truncation: float = 1.0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        return truncated_normal((n, self.latent_dim), truncation=truncation, generator=g)

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, truncation: float = 1.0,
               class_id: int | None = None) -> torch.Tensor:
        """``n`` images of ``class_id`` (or classes ``0, 1, 2, ...`` cycling when None)."""
        z = self.latents(n, seed=seed, truncation=truncation)
        if class_id is None:
            y = torch.arange(n) % self.num_classes
        else:
            y = torch.full((n,), int(class_id), dtype=torch.long)
        return self(z, y)


def biggan(*, latent_dim: int = 80, num_classes: int = 10, shared_dim: int = 64,
           image_size: int = 32, channels: int = 3, width: int = 32,
           attention: int = 16) -> BigGAN:
    """Build a compact BigGAN; ``attention`` is the resolution of the attention block."""
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of 2 >= 8, got {image_size}")
    gen = BigGenerator(latent_dim, num_classes, shared_dim, image_size, channels, width, attention)
    disc = ProjectionDiscriminator(num_classes, image_size, channels, width, attention)
    return BigGAN(gen, disc, latent_dim)
