"""Graph classification and node classification on a user's graph file.

The graph file is JSON (``.json``; for many graphs also ``.jsonl``, one graph per line).
Node ids are ``0 .. num_nodes - 1``; edges are undirected pairs.

One graph, node classification (``gcn``, ``gat``, ``graphsage``)::

    {"edges": [[0, 1], [1, 2], [2, 0], [3, 4]],
     "labels": ["a", "a", null, "b", "b"],        # one per node; null: unlabelled
     "x": [[0.1, 1.0], ...]}                      # optional node features, one row per node

``labels`` may also be a table ``{"0": "a", "3": "b"}``; ``num_nodes`` is optional (the
largest id in ``edges``/``labels`` + 1). Labelled nodes are split into training and
validation nodes (stratified, fixed seed); unlabelled ones only pass messages.

Many graphs, graph classification (``gin``, ``gcn_graph``, ``sage_graph``)::

    {"graphs": [{"edges": [[0, 1], [1, 2]], "label": "path"},
                {"edges": [[0, 1], [1, 2], [2, 0]], "label": "cycle", "x": [...]}]}

Without ``x``, node features are made from the structure as the model's training data
made them (``one-hot-degree`` for graph models, ``one-hot-id`` for node models; see
:mod:`zoo.plugins.gnn.graphs`). An architecture is rebuilt to the data's feature width;
a trained model needs the width it was trained on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from zoo.errors import UsageError
from zoo.finetune.recipes.base import DataOptions
from zoo.finetune.recipes.classify import Classification

GRAPH_SUFFIXES = (".json", ".jsonl")


class GraphData(Classification):
    """Node or graph classification: ``karate``, or a graph file (see the module doc)."""

    task = "graph classification"
    techniques = ("full", "freeze", "feature-extract", "lora")
    data_help = "karate, or a .json graph file (one graph with node labels, or 'graphs')"

    def prepare(self, data: Any, loaded: Any, options: DataOptions):
        p = Path(str(data)).expanduser()
        if p.suffix.lower() not in GRAPH_SUFFIXES:
            return super().prepare(data, loaded, options)     # karate
        graphs = read_graph_file(p)
        if loaded.spec.task == "graph-classification":
            return self._graphs(graphs, loaded, options, str(data))
        if len(graphs) != 1 or "labels" not in graphs[0]:
            raise UsageError(f"{p}: node classification takes one graph with 'labels' (one "
                             "per node, null for unlabelled nodes)")
        return self._nodes(graphs[0], loaded, options, str(data))

    # -- one graph, labelled nodes -------------------------------------------------------

    def _nodes(self, g: dict[str, Any], loaded: Any, options: DataOptions, name: str):
        from zoo.finetune.data import Split, TaskData, _stratified_split

        labels = g["labels"]
        edges = g.get("edges", [])
        n = _num_nodes(g, labels)
        node_labels = _node_labels(labels, n, name)
        edge_index = _edge_index(edges, n, name)
        x = self._features(g, n, edge_index, loaded, name)
        known = [i for i in range(n) if node_labels[i] is not None]
        if not known:
            raise UsageError(f"{name}: no node has a label; label some nodes")
        names = sorted({node_labels[i] for i in known})
        tr, va = _stratified_split([node_labels[i] for i in known], options.val_fraction)
        y = torch.tensor([names.index(node_labels[i]) for i in known])
        idx = torch.tensor(known)
        return TaskData("node", Split({"node": idx[tr]}, y[tr]),
                        Split({"node": idx[va]}, y[va]) if va else None, names,
                        graph={"x": x, "edge_index": edge_index}, name=name)

    # -- many graphs, one label each -----------------------------------------------------

    def _graphs(self, graphs: list[dict[str, Any]], loaded: Any, options: DataOptions,
                name: str):
        from zoo.finetune.data import _stratified_split

        rows = self._rows(graphs, loaded, name)
        labels = [r[2] for r in rows]
        names = sorted(set(labels))
        if options.val_data is not None:
            where = str(options.val_data)
            val_rows = self._rows(read_graph_file(Path(where)), loaded, where)
            train_rows = rows
        else:
            tr, va = _stratified_split(labels, options.val_fraction)
            train_rows, val_rows = [rows[i] for i in tr], [rows[i] for i in va]
        if options.limit is not None:
            train_rows = train_rows[: options.limit]
        if options.val_limit is not None:
            val_rows = val_rows[: options.val_limit]
        unknown = sorted({lab for *_, lab in val_rows} - set(names))
        if unknown:
            raise UsageError(f"{name}: validation label(s) {', '.join(unknown[:5])} do not "
                             "occur in the training graphs")
        val = self._pack(val_rows, names) if val_rows else None
        return self.task_data(self._pack(train_rows, names), val, labels=names, name=name)

    def _rows(self, graphs: list[dict[str, Any]], loaded: Any, name: str) -> list[tuple]:
        """``(x, edge_index, label)`` per graph."""
        rows = []
        for i, g in enumerate(graphs):
            if "label" not in g:
                raise UsageError(f"{name}: graph {i} has no 'label'; graph classification "
                                 "needs one label per graph")
            where = f"{name}, graph {i}"
            n = _num_nodes(g, None)
            ei = _edge_index(g.get("edges", []), n, where)
            rows.append((self._features(g, n, ei, loaded, where), ei, str(g["label"])))
        return rows

    def _features(self, g: dict[str, Any], n: int, edge_index, loaded: Any, where: str):
        from zoo.finetune.model import rebuild
        from zoo.plugins.gnn.graphs import feature_scheme, node_features

        takes = width = int(loaded.kwargs.get("in_channels", 0))
        if "x" in g:
            try:
                x = torch.tensor(g["x"], dtype=torch.float32)
            except (TypeError, ValueError):
                raise UsageError(f"{where}: 'x' must be rows of numbers, one per node") from None
            if x.dim() != 2 or x.shape[0] != n:
                raise UsageError(f"{where}: 'x' has {tuple(x.shape)} values; give {n} rows "
                                 "(one per node) of equal length")
        else:
            scheme = feature_scheme(loaded.spec, loaded.tag)
            if scheme == "one-hot-id" and n > width and not loaded.trained:
                width = n         # an architecture takes as many ids as the graph has
            x = node_features(scheme, n, edge_index, width)
        if x.shape[1] != takes:
            if loaded.trained:
                raise UsageError(f"{where}: nodes have {x.shape[1]} features but "
                                 f"'{loaded.ref}' takes {takes}; give {takes}-wide 'x' or "
                                 "fine-tune the architecture")
            kwargs = {**loaded.kwargs, "in_channels": int(x.shape[1])}
            loaded.model = rebuild(loaded, kwargs, keep_weights=False, head=None)
            loaded.kwargs = kwargs
        return x

    @staticmethod
    def _pack(rows: list[tuple[Any, Any, str]], names: list[str]):
        """Graphs as padded tensors (first dimension: the graph), for the loop's batches."""
        from zoo.finetune.data import Split

        nodes = torch.tensor([x.shape[0] for x, _, _ in rows])
        n_edges = torch.tensor([ei.shape[1] for _, ei, _ in rows])
        width = rows[0][0].shape[1]
        x = torch.zeros(len(rows), max(int(nodes.max()), 1), width)
        edges = torch.zeros(len(rows), 2, max(int(n_edges.max()), 1), dtype=torch.long)
        for i, (xi, ei, _) in enumerate(rows):
            x[i, : xi.shape[0]] = xi
            edges[i, :, : ei.shape[1]] = ei
        y = torch.tensor([names.index(lab) for *_, lab in rows])
        return Split({"x": x, "nodes": nodes, "edges": edges, "n_edges": n_edges}, y)

    @staticmethod
    def unpack(inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """``(x, edge_index, batch)`` of a batch of packed graphs (torch_geometric style)."""
        nodes, n_edges = inputs["nodes"].tolist(), inputs["n_edges"].tolist()
        xs, eis, offset = [], [], 0
        for i, (n, e) in enumerate(zip(nodes, n_edges, strict=True)):
            xs.append(inputs["x"][i, :n])
            eis.append(inputs["edges"][i, :, :e] + offset)
            offset += n
        batch = torch.repeat_interleave(torch.arange(len(nodes), device=inputs["x"].device),
                                        inputs["nodes"])
        return torch.cat(xs), torch.cat(eis, dim=1), batch

    def loss_sum(self, model: Any, batch: Any):
        return F.cross_entropy(_logits(model(*self.unpack(batch.inputs))), batch.y,
                               reduction="sum")

    def evaluate(self, model: Any, data: Any, split: Any) -> dict[str, float]:
        from zoo.finetune.loop import macro_f1

        logits = torch.cat([_logits(model(*self.unpack(split.take(
            range(i, min(i + 256, len(split)))).inputs))) for i in range(0, len(split), 256)])
        pred = logits.argmax(-1)
        return {"loss": float(F.cross_entropy(logits, split.y)),
                "accuracy": float((pred == split.y).float().mean()),
                "macro_f1": macro_f1(pred, split.y, len(data.labels))}


def _logits(out: Any) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out[0]


def read_graph_file(path: Path) -> list[dict[str, Any]]:
    """The graphs of a ``.json`` file (one graph, or ``{"graphs": [...]}``) or a
    ``.jsonl`` file (one graph per line)."""
    if not path.is_file():
        raise UsageError(f"{path}: no such graph file")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".jsonl":
            graphs = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            doc = json.loads(text)
            graphs = doc["graphs"] if isinstance(doc, dict) and "graphs" in doc else [doc]
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: not a JSON graph file ({type(e).__name__}: "
                         f"{str(e)[:80]})") from None
    if not isinstance(graphs, list) or not graphs or \
            not all(isinstance(g, dict) for g in graphs):
        raise UsageError(f"{path}: expected a graph object, or {{\"graphs\": [objects]}} "
                         "with 'edges' and labels")
    return graphs


def _num_nodes(g: dict[str, Any], labels: Any) -> int:
    if isinstance(g.get("num_nodes"), int) and g["num_nodes"] > 0:
        return int(g["num_nodes"])
    ids = [int(v) for e in g.get("edges", []) for v in e if isinstance(v, int)]
    if isinstance(labels, list):
        ids.append(len(labels) - 1)
    elif isinstance(labels, dict):
        ids += [int(k) for k in labels if str(k).isdigit()]
    if "x" in g and isinstance(g["x"], list):
        ids.append(len(g["x"]) - 1)
    return max(ids, default=-1) + 1


def _node_labels(labels: Any, n: int, where: str) -> list[str | None]:
    out: list[str | None] = [None] * n
    if isinstance(labels, list):
        if len(labels) != n:
            raise UsageError(f"{where}: 'labels' has {len(labels)} entries for {n} nodes; "
                             "give one per node (null for unlabelled ones)")
        return [None if v is None else str(v) for v in labels]
    if isinstance(labels, dict):
        for k, v in labels.items():
            if not str(k).isdigit() or int(k) >= n:
                raise UsageError(f"{where}: 'labels' names node {k!r}, not one of 0..{n - 1}")
            out[int(k)] = None if v is None else str(v)
        return out
    raise UsageError(f"{where}: 'labels' must be a list (one per node) or a table "
                     "{node id: label}")


def _edge_index(edges: Any, n: int, where: str):
    from zoo.plugins.gnn.graphs import undirected

    if not isinstance(edges, list) or not all(
            isinstance(e, list | tuple) and len(e) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in e) for e in edges):
        raise UsageError(f"{where}: 'edges' must be a list of [a, b] node-id pairs")
    bad = [v for e in edges for v in e if not 0 <= v < n]
    if bad:
        raise UsageError(f"{where}: edge names node {bad[0]}, not one of 0..{n - 1}")
    return undirected([tuple(e) for e in edges], n)
