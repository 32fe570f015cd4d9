"""Predictors for ``zoo.predict`` and the demos: classify the nodes of a graph, or a graph.

Registered in ``zoo.predict.TASKS`` as
``("gnn", "node-classification") -> "zoo.plugins.gnn.predict:classify_nodes"`` and
``("gnn", "graph-classification") -> "zoo.plugins.gnn.predict:classify_graph"``.
A graph is ``"karate"`` (Zachary's karate club, built in), edge-list text (one ``"a b"``
pair per line) or a list of ``(a, b)`` pairs; node features are made from the structure
as the model's training data made them (see :mod:`zoo.plugins.gnn.graphs`).
"""

from __future__ import annotations

from typing import Any

from zoo.errors import UsageError

from .graphs import feature_scheme, is_graph_level, node_features, parse_edge_list, undirected


def _in_channels(model: Any, spec: Any, tag: str | None) -> int:
    kwargs = dict(spec.kwargs)
    if tag is not None:
        kwargs.update(spec.pretrained[tag].kwargs)
    if "in_channels" in kwargs:
        return int(kwargs["in_channels"])
    return int(model.in_channels)


def load_graph(graph: Any, spec: Any, tag: str | None, model: Any = None,
               features: str | None = None):
    """``(x, edge_index)`` for ``graph`` with the features ``spec``/``tag`` expect.

    Raises:
        UsageError: a malformed edge list, or a graph the features cannot describe.
    """
    in_channels = _in_channels(model, spec, tag)
    scheme = features or feature_scheme(spec, tag)
    if isinstance(graph, str) and graph.strip().lower() == "karate":
        from .datasets import karate

        data = karate()
        num_nodes, edge_index = data.num_nodes, data.edge_index
    else:
        num_nodes, pairs = parse_edge_list(graph)
        edge_index = undirected(pairs, num_nodes)
    return node_features(scheme, num_nodes, edge_index, in_channels), edge_index


def _labels(spec: Any, tag: str | None, n: int) -> list[str]:
    labels = spec.pretrained[tag].labels if tag else None
    return list(labels) if labels else [str(i) for i in range(n)]


def classify_nodes(model, spec, tag, graph, *, features: str | None = None
                   ) -> list[dict[str, Any]]:
    """Predict every node's class: ``[{"node", "label", "probability"}, ...]`` by node id.

    Args:
        graph: ``"karate"``, edge-list text (``"a b"`` per line) or a list of pairs; nodes
            are ``0 .. max id``.
        features: override the node features (``one-hot-id``, ``one-hot-degree``,
            ``constant``); by default those of the tag's training data. ``gcn.karate``
            uses one-hot node ids, so it takes graphs of at most 34 nodes.

    Raises:
        UsageError: a malformed edge list, or a graph too large for one-hot id features.
    """
    import torch

    if is_graph_level(spec):
        raise UsageError(f"{spec.name} classifies whole graphs; use classify_graph")
    x, edge_index = load_graph(graph, spec, tag, model, features)
    with torch.inference_mode():
        probs = torch.softmax(model(x, edge_index), dim=-1)
    labels = _labels(spec, tag, probs.size(1))
    conf, pred = probs.max(dim=-1)
    return [{"node": i, "label": labels[p], "probability": float(c)}
            for i, (p, c) in enumerate(zip(pred.tolist(), conf.tolist(), strict=True))]


def classify_graph(model, spec, tag, graph, *, top_k: int = 5,
                   features: str | None = None) -> list[tuple[str, float]]:
    """Top-k ``(label, probability)`` for one whole graph (same inputs as classify_nodes).

    Raises:
        UsageError: a malformed edge list, or a node-level model.
    """
    import torch

    if not is_graph_level(spec):
        raise UsageError(f"{spec.name} classifies nodes; use classify_nodes")
    x, edge_index = load_graph(graph, spec, tag, model, features)
    batch = torch.zeros(x.size(0), dtype=torch.long)
    with torch.inference_mode():
        probs = torch.softmax(model(x, edge_index, batch), dim=-1)[0]
    labels = _labels(spec, tag, probs.numel())
    values, idx = probs.topk(min(top_k, probs.numel()))
    return [(labels[i], float(v)) for v, i in zip(values.tolist(), idx.tolist(), strict=True)]
