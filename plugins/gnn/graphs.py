"""Graph inputs for the GNN family: example graphs, edge-list parsing and node features.

Graphs travel as plain tensors, ``(x, edge_index)`` for node-level models and
``(x, edge_index, batch)`` for graph-level ones, so every model from ``zoo.get`` is
called the way torch_geometric models are.

Node features. Users upload bare edge lists, so features have to be made from the
structure alone, the same way the model's training data made them:

- ``one-hot-id``: node ``i`` gets the ``i``-th unit vector (KarateClub's features, so
  ``gcn.karate``). Only defined for graphs of at most ``in_channels`` nodes: node ``i``
  of an uploaded graph is read as "member ``i`` of the club".
- ``one-hot-degree``: one-hot node degree, the last bin holding every degree above it
  (the synthetic shapes data, so ``gin.shapes``). Works for any graph size.
- ``constant``: all ones, the structure-only baseline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from zoo.errors import UsageError

FEATURES = ("one-hot-id", "one-hot-degree", "constant")
#: Which features a trained tag's dataset used; tags of other datasets fall back on the
#: task's default (node models: one-hot-id, graph models: one-hot-degree).
DATASET_FEATURES = {"karate-club": "one-hot-id", "synthetic-shapes": "one-hot-degree"}
#: Refuse absurd node ids before allocating ``max_id + 1`` feature rows.
MAX_NODES = 100_000
GRAPH_TASK = "graph-classification"


def is_graph_level(spec: Any) -> bool:
    """True for models that score whole graphs (forward takes a ``batch`` vector)."""
    return spec.task == GRAPH_TASK


def example_input(spec, tag=None):
    """Example forward args: a 16-node ring ``(x, edge_index)`` for node-level models, or
    a batch of three graphs (ring, path, star) ``(x, edge_index, batch)`` for graph-level
    ones, with the model's ``in_channels`` random features per node (fixed seed)."""
    import torch

    kwargs = dict(spec.kwargs)
    if tag is not None:
        kwargs.update(spec.pretrained[tag].kwargs)
    feats = int(kwargs.get("in_channels", 16))
    g = torch.Generator().manual_seed(0)
    if not is_graph_level(spec):
        n = 16
        return (torch.randn(n, feats, generator=g), undirected(ring_edges(n), n))
    parts = [undirected(ring_edges(6), 6), undirected(path_edges(5), 5),
             undirected(star_edges(7), 7)]
    sizes = [6, 5, 7]
    offsets = torch.tensor([0, 6, 11])
    edge_index = torch.cat([e + o for e, o in zip(parts, offsets, strict=True)], dim=1)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return (torch.randn(sum(sizes), feats, generator=g), edge_index, batch)


# -- small edge-list builders (pairs, one direction) ---------------------------------------

def ring_edges(n: int) -> list[tuple[int, int]]:
    return [(i, (i + 1) % n) for i in range(n)]


def path_edges(n: int) -> list[tuple[int, int]]:
    return [(i, i + 1) for i in range(n - 1)]


def star_edges(n: int) -> list[tuple[int, int]]:
    return [(0, i) for i in range(1, n)]


def undirected(pairs: Iterable[tuple[int, int]], num_nodes: int):
    """``edge_index`` with both directions of every pair, no self loops, no duplicates."""
    import torch

    seen = set()
    for a, b in pairs:
        if a != b:
            seen.add((a, b))
            seen.add((b, a))
    if not seen:
        return torch.empty(2, 0, dtype=torch.long)
    edge_index = torch.tensor(sorted(seen), dtype=torch.long).t().contiguous()
    if int(edge_index.max()) >= num_nodes:
        raise ValueError(f"edge refers to node {int(edge_index.max())} of a "
                         f"{num_nodes}-node graph")
    return edge_index


# -- user input ------------------------------------------------------------------------

def parse_edge_list(graph: Any) -> tuple[int, list[tuple[int, int]]]:
    """Read an edge list: text with one ``"a b"`` pair per line (``#`` comments, blank
    lines and ``a,b`` allowed) or a sequence of integer pairs.

    Nodes are the integers ``0 .. max id``; an id that appears in no edge is an isolated
    node. Returns ``(num_nodes, pairs)``.

    Raises:
        UsageError: not integers, negative ids, not pairs, no edges, or too many nodes.
    """
    pairs: list[tuple[int, int]] = []
    if isinstance(graph, bytes):
        graph = graph.decode("utf-8", errors="replace")
    elif hasattr(graph, "tolist"):  # a numpy array or tensor of shape [num_edges, 2]
        graph = graph.tolist()
    if isinstance(graph, str):
        for lineno, raw in enumerate(graph.splitlines(), 1):
            line = raw.split("#", 1)[0].replace(",", " ").strip()
            if not line:
                continue
            tokens = line.split()
            if len(tokens) != 2:
                raise UsageError(f"edge list line {lineno}: '{raw.strip()}' is not a pair; "
                                 "write one edge per line as 'a b' (two node ids)")
            pairs.append((_node_id(tokens[0], f"line {lineno}"),
                          _node_id(tokens[1], f"line {lineno}")))
    elif isinstance(graph, Iterable):
        for i, item in enumerate(graph):
            pair = list(item) if isinstance(item, Iterable) \
                and not isinstance(item, str | bytes) else None
            if pair is None or len(pair) != 2:
                raise UsageError(f"edge list item {i}: {item!r} is not a pair; give pairs "
                                 "of node ids like [(0, 1), (1, 2)]")
            pairs.append((_node_id(pair[0], f"item {i}"), _node_id(pair[1], f"item {i}")))
    else:
        raise UsageError(f"a graph is 'karate', edge-list text or a list of pairs, not a "
                         f"{type(graph).__name__}")
    if not pairs:
        raise UsageError("the edge list is empty; give at least one edge as 'a b'")
    num_nodes = max(max(p) for p in pairs) + 1
    if num_nodes > MAX_NODES:
        raise UsageError(f"node id {num_nodes - 1} is too large (at most {MAX_NODES - 1}); "
                         "number the nodes 0, 1, 2, ...")
    return num_nodes, pairs


def _node_id(token: Any, where: str) -> int:
    if isinstance(token, bool):
        raise UsageError(f"edge list {where}: {token!r} is not a node id; use integers >= 0")
    if isinstance(token, int):
        value = token
    elif isinstance(token, float) and token.is_integer():
        value = int(token)
    else:
        try:
            value = int(str(token).strip())
        except ValueError:
            raise UsageError(f"edge list {where}: '{token}' is not a node id; node ids are "
                             "integers 0, 1, 2, ...") from None
    if value < 0:
        raise UsageError(f"edge list {where}: node id {value} is negative; node ids are "
                         "integers 0, 1, 2, ...")
    return value


def node_features(scheme: str, num_nodes: int, edge_index, in_channels: int):
    """Features ``[num_nodes, in_channels]`` made from structure alone (see module doc).

    Raises:
        UsageError: unknown scheme, or ``one-hot-id`` on a graph larger than the model.
    """
    import torch

    if scheme == "one-hot-id":
        if num_nodes > in_channels:
            raise UsageError(
                f"this model's features are one-hot node ids for at most {in_channels} nodes, "
                f"the graph has {num_nodes}; give a graph with nodes 0..{in_channels - 1}, or "
                "use a model trained on degree features (e.g. gin.shapes)")
        x = torch.zeros(num_nodes, in_channels)
        x[torch.arange(num_nodes), torch.arange(num_nodes)] = 1.0
        return x
    if scheme == "one-hot-degree":
        deg = torch.zeros(num_nodes, dtype=torch.long)
        if edge_index.numel():
            deg.scatter_add_(0, edge_index[0], torch.ones(edge_index.size(1), dtype=torch.long))
        return torch.nn.functional.one_hot(deg.clamp(max=in_channels - 1),
                                           in_channels).float()
    if scheme == "constant":
        return torch.ones(num_nodes, in_channels)
    raise UsageError(f"unknown node features '{scheme}'; use one of {', '.join(FEATURES)}")


def feature_scheme(spec: Any, tag: str | None) -> str:
    """The node features a model expects: its tag's dataset's, else the task default."""
    dataset = spec.pretrained[tag].dataset if tag else None
    if dataset in DATASET_FEATURES:
        return DATASET_FEATURES[dataset]
    return "one-hot-degree" if is_graph_level(spec) else "one-hot-id"
