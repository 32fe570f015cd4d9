"""Graph-level GNN classifiers: a message-passing stack, global pooling, then an MLP head.

Node-level models (gcn, gat, graphsage) are torch_geometric's own ``GCN`` / ``GAT`` /
``GraphSAGE`` built straight from the catalog; this module only holds what
torch_geometric has no ready class for: one module that turns a whole graph (or a
batch of graphs) into class scores.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import (
    GATConv,
    GCNConv,
    GINConv,
    SAGEConv,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
)

from zoo.errors import BuildError

CONVS = ("gcn", "gat", "sage", "gin")
POOLS = {"mean": global_mean_pool, "max": global_max_pool, "add": global_add_pool}


def _conv(kind: str, cin: int, cout: int, *, heads: int, aggr: str) -> nn.Module:
    if kind == "gcn":
        return GCNConv(cin, cout)
    if kind == "gat":
        # Heads are concatenated, so each head gets an equal share of the width.
        if cout % heads:
            raise BuildError(f"hidden_channels={cout} is not divisible by heads={heads}")
        return GATConv(cin, cout // heads, heads=heads)
    if kind == "sage":
        return SAGEConv(cin, cout, aggr=aggr)
    # GIN (Xu et al., 2019): a 2-layer MLP per layer, plain torch Linear layers, so
    # peft's LoRA can wrap them (unlike torch_geometric's own Linear in GCNConv).
    mlp = nn.Sequential(nn.Linear(cin, cout), nn.ReLU(), nn.Linear(cout, cout))
    return GINConv(mlp, train_eps=True)


class GraphClassifier(nn.Module):
    """Message passing (``num_layers`` convs), global pooling, and an MLP head.

    ``forward(x, edge_index, batch)`` returns ``[num_graphs, out_channels]`` logits;
    ``batch`` maps each node to its graph (``None``: all nodes form one graph).
    """

    def __init__(self, *, conv: str = "gin", in_channels: int, hidden_channels: int = 32,
                 num_layers: int = 3, out_channels: int, pool: str = "add",
                 heads: int = 1, aggr: str = "mean", dropout: float = 0.0):
        super().__init__()
        if conv not in CONVS:
            raise BuildError(f"conv must be one of {', '.join(CONVS)}, got {conv!r}")
        if pool not in POOLS:
            raise BuildError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
        if num_layers < 1:
            raise BuildError(f"num_layers must be at least 1, got {num_layers}")
        self.conv_kind, self.pool_kind = conv, pool
        self.convs = nn.ModuleList(
            _conv(conv, in_channels if i == 0 else hidden_channels, hidden_channels,
                  heads=heads, aggr=aggr)
            for i in range(num_layers))
        self.act = nn.ReLU()
        self.head = nn.Sequential(
            nn.Linear(hidden_channels, hidden_channels), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden_channels, out_channels))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        for conv in self.convs:
            x = self.act(conv(x, edge_index))
        if batch is None:
            batch = x.new_zeros(x.size(0), dtype=torch.long)
        return self.head(POOLS[self.pool_kind](x, batch))

    def extra_repr(self) -> str:
        return f"conv={self.conv_kind}, pool={self.pool_kind}"


def graph_classifier(*, conv: str = "gin", in_channels: int, out_channels: int,
                     hidden_channels: int = 32, num_layers: int = 3, pool: str = "add",
                     heads: int = 1, aggr: str = "mean", dropout: float = 0.0
                     ) -> GraphClassifier:
    """Build a graph classifier: ``conv`` in gcn/gat/sage/gin, ``pool`` in mean/max/add."""
    return GraphClassifier(conv=conv, in_channels=in_channels, hidden_channels=hidden_channels,
                           num_layers=num_layers, out_channels=out_channels, pool=pool,
                           heads=heads, aggr=aggr, dropout=dropout)
