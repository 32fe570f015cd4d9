"""Train ``gcn.karate``: a 2-layer GCN on Zachary's karate club (torch_geometric KarateClub).

Semi-supervised as in Kipf & Welling: only the 4 members in ``train_mask`` (one per
community) have labels; accuracy is measured on the 30 others. Deterministic (fixed
seed, one thread). Writes ``zoo/trained/gcn-karate.safetensors`` and ``gcn-karate.json``
(metrics and recipe) and prints the numbers to copy into registry.toml
(``[models.gcn.pretrained.karate]``: sha256, metrics).

    OMP_NUM_THREADS=1 python scripts/train_gcn_karate.py
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch_geometric.nn.models import GCN

from zoo.plugins.gnn.datasets import KARATE_LABELS, karate
from zoo.shipping import run_script, ship

ROOT = Path(__file__).resolve().parents[1]
NAME = "gcn-karate"
# The catalog entry's builder kwargs; the tag fixes in/out channels (34 one-hot ids in,
# 4 communities out).
KWARGS = {"in_channels": 34, "hidden_channels": 16, "num_layers": 2, "out_channels": 4}


def accuracy(model: torch.nn.Module, data, mask: torch.Tensor) -> float:
    """Share of nodes under ``mask`` whose community the model predicts right."""
    model.eval()
    with torch.no_grad():
        pred = model(data.x, data.edge_index).argmax(dim=-1)
    return float((pred[mask] == data.y[mask]).float().mean())


def main(out_dir: str | Path = ROOT / "zoo" / "trained", *, epochs: int = 200,
         seed: int = 0) -> dict:
    """Train, evaluate on the unlabelled members, write the weights; return the metrics."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    data = karate()
    model = GCN(**KWARGS)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        loss = F.cross_entropy(out[data.train_mask], data.y[data.train_mask])
        loss.backward()
        opt.step()
    metrics = {"accuracy-unlabelled": round(accuracy(model, data, ~data.train_mask), 4),
               "train-loss": round(loss.item(), 4)}
    print(f"accuracy on the {int((~data.train_mask).sum())} unlabelled members: "
          f"{metrics['accuracy-unlabelled']:.4f}")
    ship(model, Path(out_dir) / f"{NAME}.safetensors", name="gcn", tag="karate", kwargs=KWARGS,
         labels=KARATE_LABELS, dataset="karate-club",
         metrics={"accuracy-unlabelled": metrics["accuracy-unlabelled"]},
         sidecar={"epochs": epochs, "seed": seed, "optimizer": "Adam lr=0.01 weight_decay=5e-4",
                  "metrics": metrics})
    return metrics


if __name__ == "__main__":
    run_script(main)
