"""Vision Transformers: a compact in-house ViT (``vit``, ``vit.digits``) and timm's.

torchvision's ViT-B/16, B/32 and L/16 are built by torchvision itself (the catalog names
``torchvision.models:vit_b_16`` and so on); :func:`timm_vit` builds any timm ViT offline
with random weights.

The in-house model follows the paper (Dosovitskiy et al., 2020): a strided convolution
cuts the image into patches, a learnt [CLS] token and position embeddings are added, and
pre-norm encoder blocks feed a linear head on the [CLS] token. Attention keeps its input
and output projections as separate ``nn.Linear`` layers (``qkv``, ``proj``) so that LoRA
can target them.
"""

from __future__ import annotations

import torch
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection and an output ``proj``."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer encoder block: ``x + attn(norm(x))``, ``x + mlp(norm(x))``."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(mlp_dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """A ViT classifier for ``in_channels x image_size x image_size`` images."""

    def __init__(self, *, image_size: int, patch_size: int, in_channels: int, num_classes: int,
                 dim: int, depth: int, heads: int, mlp_dim: int, dropout: float = 0.0):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size "
                             f"{patch_size}")
        self.patch_embed = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        num_patches = (image_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, num_patches + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_dim, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.apply(_init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised [CLS] vector, ``batch x dim``."""
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.norm(self.blocks(x))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def vit(*, image_size: int = 32, patch_size: int = 8, in_channels: int = 1,
        num_classes: int = 10, dim: int = 64, depth: int = 4, heads: int = 4,
        mlp_dim: int = 128, dropout: float = 0.0) -> VisionTransformer:
    """Build the in-house ViT; the defaults are the ``vit.digits`` configuration."""
    return VisionTransformer(image_size=image_size, patch_size=patch_size,
                             in_channels=in_channels, num_classes=num_classes, dim=dim,
                             depth=depth, heads=heads, mlp_dim=mlp_dim, dropout=dropout)


def timm_vit(*, name: str = "vit_tiny_patch16_224", num_classes: int = 1000, **kwargs):
    """A timm Vision Transformer with random weights (``timm.create_model``, no download)."""
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
