"""Example graphs for GNN forward passes."""

from __future__ import annotations


def example_input(spec, tag=None):
    """A random 16-node ring graph with the model's ``in_channels`` features per node."""
    import torch

    n = 16
    feats = int(spec.kwargs.get("in_channels", 16))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, feats, generator=g)
    src = torch.arange(n)
    dst = (src + 1) % n
    edge_index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
    return (x, edge_index)
