"""Data for the GNN family's shipped models, made on the spot (no download).

- :func:`karate`: Zachary's karate club as torch_geometric ships it (34 members,
  4 communities, one labelled member per community).
- :func:`make_shapes`: the *synthetic-shapes* graph-classification data: cycles, trees,
  grids and wheels of random size, randomly relabelled, with a few random noise edges,
  so that no single count (nodes, edges) gives the class away.
"""

from __future__ import annotations

import random

import torch
from torch_geometric.data import Data

from .graphs import node_features, undirected

#: KarateClub's 4 communities (index order). torch_geometric's labels come from a
#: modularity clustering; each community is named after the member it is built around:
#: the instructor "Mr. Hi" (node 0, class 1) and the administrator "John A." (node 33,
#: class 0) lead the two factions of the club's split; classes 3 (nodes 4, 5, 6, 10, 16)
#: and 2 (nodes 24, 25, 28, 31) are smaller groups hanging off each faction.
KARATE_LABELS = ("administrator faction", "instructor faction",
                 "administrator outer group", "instructor outer group")

SHAPES = ("cycle", "tree", "grid", "wheel")
#: One-hot degree bins of the shapes data: degrees 0..7, the last bin is "7 or more".
SHAPES_DEGREE_BINS = 8


def karate() -> Data:
    """torch_geometric's KarateClub graph (one-hot id features, ``train_mask``)."""
    from torch_geometric.datasets import KarateClub

    return KarateClub()[0]


def _shape_edges(kind: str, rng: random.Random) -> tuple[int, list[tuple[int, int]]]:
    if kind == "cycle":
        n = rng.randint(8, 24)
        return n, [(i, (i + 1) % n) for i in range(n)]
    if kind == "tree":
        n = rng.randint(8, 24)
        # random recursive tree: each new node hangs off a random earlier one
        return n, [(rng.randrange(i), i) for i in range(1, n)]
    if kind == "grid":
        rows, cols = rng.randint(2, 5), rng.randint(3, 6)
        n = rows * cols
        edges = [(r * cols + c, r * cols + c + 1) for r in range(rows) for c in range(cols - 1)]
        edges += [(r * cols + c, (r + 1) * cols + c) for r in range(rows - 1) for c in range(cols)]
        return n, edges
    if kind == "wheel":
        rim = rng.randint(7, 23)
        return rim + 1, [(0, i) for i in range(1, rim + 1)] + \
            [(i, i % rim + 1) for i in range(1, rim + 1)]
    raise ValueError(f"unknown shape {kind!r}")


def make_shape(kind: str, rng: random.Random, *, noise_edges: int = 2) -> Data:
    """One graph of ``kind`` with ``0..noise_edges`` random extra edges, nodes shuffled."""
    n, edges = _shape_edges(kind, rng)
    present = {frozenset(e) for e in edges}
    for _ in range(rng.randint(0, noise_edges)):
        for _attempt in range(20):
            a, b = rng.randrange(n), rng.randrange(n)
            if a != b and frozenset((a, b)) not in present:
                present.add(frozenset((a, b)))
                edges.append((a, b))
                break
    perm = list(range(n))
    rng.shuffle(perm)
    edge_index = undirected([(perm[a], perm[b]) for a, b in edges], n)
    x = node_features("one-hot-degree", n, edge_index, SHAPES_DEGREE_BINS)
    return Data(x=x, edge_index=edge_index, y=torch.tensor([SHAPES.index(kind)]), num_nodes=n)


def make_shapes(num_graphs: int, *, seed: int, noise_edges: int = 2) -> list[Data]:
    """``num_graphs`` labelled graphs, classes in turn (balanced), deterministic in ``seed``."""
    rng = random.Random(seed)
    return [make_shape(SHAPES[i % len(SHAPES)], rng, noise_edges=noise_edges)
            for i in range(num_graphs)]
