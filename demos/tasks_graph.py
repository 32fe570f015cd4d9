"""Node classification: a built-in graph or an uploaded edge list -> a coloured picture
and a table of predicted classes."""

from __future__ import annotations

from typing import Any

from .base import Adapter, DemoInputError, call_helper, example_path, gradio, task_helper

KARATE = "karate club (34 nodes)"
TWO_COMMUNITIES = "two communities (10 nodes)"
RING = "ring (12 nodes)"
STAR = "star (9 nodes)"
PATH = "path (10 nodes)"
BUILTIN_GRAPHS = (KARATE, TWO_COMMUNITIES, RING)
SIMPLE_GRAPHS = {
    RING: lambda: (12, [(i, (i + 1) % 12) for i in range(12)]),
    STAR: lambda: (9, [(0, i) for i in range(1, 9)]),
    PATH: lambda: (10, [(i, i + 1) for i in range(9)]),
}
MAX_NODES = 5000
MAX_DRAWN_NODES = 400
MAX_EDGE_FILE_BYTES = 5_000_000


def parse_edge_list(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Node names (in order of appearance) and edges from ``SOURCE TARGET [WEIGHT]`` lines.

    Separators are spaces, tabs or commas; ``#`` starts a comment. Numeric names keep
    their numeric order so that ``0 1`` files index nodes as written.
    """
    names: dict[str, int] = {}
    raw: list[tuple[str, str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(",", " ").split()
        if len(parts) not in (2, 3) or (len(parts) == 3 and not _is_number(parts[2])):
            shown = line if len(line) <= 40 else line[:37] + "..."
            raise DemoInputError(f"edge list line {lineno}: expected 'SOURCE TARGET' "
                                 f"(optionally a numeric weight), got {shown!r}")
        raw.append((parts[0], parts[1]))
    if not raw:
        raise DemoInputError("the edge list has no edges; give one 'SOURCE TARGET' pair a line")
    tokens = {t for e in raw for t in e}
    if all(t.lstrip("-").isdigit() for t in tokens):
        order = sorted(tokens, key=int)
    else:
        order = list(dict.fromkeys(t for e in raw for t in e))
    if len(order) > MAX_NODES:
        raise DemoInputError(f"the graph has {len(order):,} nodes; this demo takes at most "
                             f"{MAX_NODES:,}")
    names = {t: i for i, t in enumerate(order)}
    return order, [(names[a], names[b]) for a, b in raw]


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_edge_file(path: str) -> tuple[list[str], list[tuple[int, int]]]:
    import os

    if os.path.getsize(path) > MAX_EDGE_FILE_BYTES:
        raise DemoInputError(f"the edge list file is over {MAX_EDGE_FILE_BYTES // 1_000_000} MB; "
                             "upload a smaller graph")
    not_text = DemoInputError("the uploaded file is not text; upload an edge list "
                              "(one 'SOURCE TARGET' pair a line)")
    try:
        # utf-8-sig: editors on Windows start files with a byte-order mark, which would
        # otherwise glue itself to the first node's name
        with open(path, encoding="utf-8-sig") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        raise not_text from None
    if "\x00" in text:          # valid UTF-8, but binary (a NUL never occurs in text files)
        raise not_text
    return parse_edge_list(text)


class NodeClassification(Adapter):
    """Graph in (built-in or edge list), predicted class per node out."""

    task = "node-classification"
    hint = ("Pick a built-in graph or upload an edge list (one 'SOURCE TARGET' pair a line); "
            "an upload wins over the choice.")
    builtin_graphs = BUILTIN_GRAPHS

    def inputs(self):
        gr = gradio()
        return [gr.Dropdown(list(self.builtin_graphs), value=self.builtin_graphs[0],
                            label="built-in graph"),
                gr.File(label="or upload an edge list",
                        file_types=[".txt", ".csv", ".edgelist", ".tsv"])]

    def outputs(self):
        gr = gradio()
        return [gr.Image(type="pil", label="graph coloured by predicted class", format="png"),
                gr.Dataframe(headers=["node", "class", "confidence"], label="predictions")]

    def examples(self):
        return [[self.builtin_graphs[0], None],
                [TWO_COMMUNITIES, example_path("two_communities.txt")]]

    def graph(self, choice: str | None, upload: Any) -> tuple[list[str], list[tuple[int, int]],
                                                               str | None]:
        """``(node names, edges as index pairs, built-in name or None)`` for the request."""
        if upload is not None:
            path = upload if isinstance(upload, str) else getattr(upload, "name", None)
            if path is None:
                raise DemoInputError("could not read the uploaded file; upload it again")
            return (*read_edge_file(path), None)
        choice = choice or self.builtin_graphs[0]
        if choice == KARATE:
            from torch_geometric.datasets import KarateClub

            ei = KarateClub()[0].edge_index
            pairs = [(a, b) for a, b in zip(ei[0].tolist(), ei[1].tolist(), strict=True)
                     if a < b]
            return [str(i) for i in range(34)], pairs, "karate"
        if choice == TWO_COMMUNITIES:
            return (*read_edge_file(example_path("two_communities.txt")), None)
        for name, make in SIMPLE_GRAPHS.items():
            if choice == name:
                n, pairs = make()
                return [str(i) for i in range(n)], pairs, None
        raise DemoInputError(f"unknown graph {choice!r}; pick one of: "
                             + ", ".join(self.builtin_graphs))

    def predict_graph(self, model, names, pairs, builtin):
        """The model's raw answer for the graph: the family helper's, else a forward pass."""
        import torch

        fn = task_helper(self.target)
        if fn is not None:
            return call_helper(fn, self.target, model, builtin or pairs, top_k=5)
        n = len(names)
        src = [a for a, b in pairs] + [b for a, b in pairs]
        dst = [b for a, b in pairs] + [a for a, b in pairs]
        edge_index = torch.tensor([src, dst], dtype=torch.long)
        x = one_hot_ids(n, int(self.target.kwargs.get("in_channels", 0) or n))
        if self.task == "graph-classification":
            return model(x, edge_index, torch.zeros(n, dtype=torch.long))
        return model(x, edge_index)

    def run(self, model, choice, upload=None):
        import torch

        names, pairs, builtin = self.graph(choice, upload)
        classes, conf = _decode(self.predict_graph(model, names, pairs, builtin), len(names))
        labels = self.target.labels
        shown = [labels[c] if labels and isinstance(c, int) and c < len(labels) else str(c)
                 for c in classes]
        table = [[names[i], shown[i], round(conf[i], 4)] for i in range(len(names))]
        edge_index = torch.tensor([[a for a, _ in pairs], [b for _, b in pairs]])
        return draw_graph(edge_index, names, shown), table


def one_hot_ids(n: int, width: int):
    """One-hot node ids (KarateClub's features), cut or zero-padded to ``width`` columns."""
    import torch

    x = torch.zeros(n, width)
    idx = torch.arange(min(n, width))
    x[idx, idx] = 1.0
    return x


class GraphClassification(NodeClassification):
    """Graph in (built-in or edge list), one class for the whole graph out."""

    task = "graph-classification"
    builtin_graphs = (RING, STAR, PATH, TWO_COMMUNITIES)

    def outputs(self):
        gr = gradio()
        return [gr.Label(num_top_classes=min(5, len(self.target.labels or ())) or 3,
                         label="graph class"),
                gr.Image(type="pil", label="graph", format="png")]

    def run(self, model, choice, upload=None):
        import torch

        from .tasks_image import to_label

        names, pairs, builtin = self.graph(choice, upload)
        out = self.predict_graph(model, names, pairs, builtin)
        if isinstance(out, torch.Tensor):
            probs = torch.softmax(out.float().reshape(-1), dim=0)
            labels = self.target.labels or [str(i) for i in range(probs.numel())]
            out = {labels[i]: float(p) for i, p in enumerate(probs.tolist())}
        edge_index = torch.tensor([[a for a, _ in pairs], [b for _, b in pairs]])
        return to_label(out), draw_graph(edge_index, names, ["graph"] * len(names))


def _decode(out: Any, n: int) -> tuple[list, list[float]]:
    """Per-node ``(class, confidence)`` from logits, class ids, or ``(label, p)`` pairs."""
    import torch

    if isinstance(out, dict):
        out = out.get("logits", out.get("classes", out))
    if isinstance(out, torch.Tensor):
        if out.dim() == 2:
            probs = torch.softmax(out.float(), dim=-1)
            conf, cls = probs.max(dim=-1)
            classes, confs = cls.tolist(), conf.tolist()
        else:
            classes, confs = out.long().tolist(), [1.0] * out.numel()
    else:
        rows = list(out)
        if rows and isinstance(rows[0], dict):      # the helpers' {node, label, probability}
            rows = sorted(rows, key=lambda r: r.get("node", 0))
            classes = [r["label"] for r in rows]
            confs = [float(r.get("probability", r.get("score", 1.0))) for r in rows]
        elif rows and isinstance(rows[0], list | tuple):
            classes = [r[0] for r in rows]
            confs = [float(r[1]) if len(r) > 1 else 1.0 for r in rows]
        else:
            classes, confs = rows, [1.0] * len(rows)
    if len(classes) != n:
        raise ValueError(f"the model answered for {len(classes)} nodes, the graph has {n}")
    return classes, confs


def draw_graph(edge_index, names: list[str], classes: list[str]):
    """A PIL picture of the graph, nodes coloured by class, with a legend."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx
    from PIL import Image

    n = len(names)
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(edge_index[0].tolist(), edge_index[1].tolist(), strict=True))
    if n > MAX_DRAWN_NODES:   # a hairball helps nobody; draw the first nodes' subgraph
        g = g.subgraph(range(MAX_DRAWN_NODES)).copy()
    pos = nx.spring_layout(g, seed=0)
    kinds = sorted(set(classes), key=str)
    cmap = plt.get_cmap("tab10" if len(kinds) <= 10 else "tab20")
    colour = {k: cmap(i % cmap.N) for i, k in enumerate(kinds)}
    fig, ax = plt.subplots(figsize=(6, 5), dpi=90)
    nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.4)
    nodes = list(g.nodes)
    nx.draw_networkx_nodes(g, pos, nodelist=nodes, ax=ax, node_size=220,
                           node_color=[colour[classes[i]] for i in nodes])
    if len(nodes) <= 60:
        nx.draw_networkx_labels(g, pos, {i: names[i] for i in nodes}, ax=ax, font_size=7)
    for k in kinds:
        ax.scatter([], [], color=colour[k], label=str(k))
    ax.legend(loc="best", fontsize=8, frameon=False)
    ax.set_axis_off()
    if n > MAX_DRAWN_NODES:
        ax.set_title(f"first {MAX_DRAWN_NODES} of {n} nodes", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    return Image.open(buf).convert("RGB")
