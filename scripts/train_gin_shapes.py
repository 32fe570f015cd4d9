"""Train ``gin.shapes``: a GIN graph classifier on generated cycles, trees, grids and wheels.

The data is made by :func:`zoo.plugins.gnn.datasets.make_shapes` (random sizes, random
node order, up to 2 noise edges per graph; one-hot degree features), so it is the same on
every machine: training graphs from seed 0, held-out test graphs from seed 1.
Deterministic (fixed seeds, one thread). Writes ``zoo/trained/gin-shapes.safetensors`` and
``gin-shapes.json`` and prints the numbers to copy into registry.toml
(``[models.gin.pretrained.shapes]``: sha256, metrics).

    OMP_NUM_THREADS=1 python scripts/train_gin_shapes.py
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch_geometric.loader import DataLoader

from zoo.plugins.gnn.datasets import SHAPES, SHAPES_DEGREE_BINS, make_shapes
from zoo.plugins.gnn.models import graph_classifier
from zoo.shipping import run_script, ship

ROOT = Path(__file__).resolve().parents[1]
NAME = "gin-shapes"
KWARGS = {"conv": "gin", "in_channels": SHAPES_DEGREE_BINS, "hidden_channels": 32,
          "num_layers": 3, "out_channels": len(SHAPES), "pool": "add"}
TRAIN_SEED, TEST_SEED = 0, 1
NUM_TRAIN, NUM_TEST = 800, 400


def evaluate(model: torch.nn.Module, graphs) -> float:
    """Accuracy of ``model`` on a list of labelled graphs."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for b in DataLoader(graphs, batch_size=128):
            correct += int((model(b.x, b.edge_index, b.batch).argmax(-1) == b.y).sum())
    return correct / len(graphs)


def main(out_dir: str | Path = ROOT / "zoo" / "trained", *, epochs: int = 40,
         num_train: int = NUM_TRAIN, num_test: int = NUM_TEST, seed: int = 0) -> dict:
    """Generate the data, train, evaluate on held-out graphs, write weights; return metrics."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    train = make_shapes(num_train, seed=TRAIN_SEED)
    test = make_shapes(num_test, seed=TEST_SEED)
    model = graph_classifier(**KWARGS)
    opt = torch.optim.Adam(model.parameters(), lr=0.005)
    loader = DataLoader(train, batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    for _ in range(epochs):
        model.train()
        for b in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(b.x, b.edge_index, b.batch), b.y)
            loss.backward()
            opt.step()
    metrics = {"accuracy": round(evaluate(model, test), 4),
               "train-accuracy": round(evaluate(model, train), 4)}
    print(f"held-out accuracy ({num_test} graphs, seed {TEST_SEED}): {metrics['accuracy']:.4f}"
          f"; train {metrics['train-accuracy']:.4f}")
    ship(model, Path(out_dir) / f"{NAME}.safetensors", name="gin", tag="shapes", kwargs=KWARGS,
         labels=SHAPES, dataset="synthetic-shapes", metrics={"accuracy": metrics["accuracy"]},
         sidecar={"epochs": epochs, "seed": seed,
                  "data": {"train": [num_train, TRAIN_SEED], "test": [num_test, TEST_SEED]},
                  "optimizer": "Adam lr=0.005 batch 32", "metrics": metrics})
    return metrics


if __name__ == "__main__":
    run_script(main)
