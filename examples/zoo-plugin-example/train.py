"""Train tinymlp on scikit-learn's 8x8 digits and write weights/tinymlp-digits.safetensors.

    python examples/zoo-plugin-example/train.py   # prints accuracy and the sha256
"""

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_model
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from zoo_plugin_example.models import tiny_mlp

OUT = Path(__file__).parent / "zoo_plugin_example" / "weights" / "tinymlp-digits.safetensors"


def main() -> float:
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    xtr, ytr = torch.from_numpy(xtr), torch.from_numpy(ytr)
    model = tiny_mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _epoch in range(60):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(perm), 128):
            idx = perm[i:i + 128]
            loss = nn_loss(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean()
    save_model(model, str(OUT))
    import hashlib

    print(f"held-out accuracy {acc:.4f}; sha256 {hashlib.sha256(OUT.read_bytes()).hexdigest()}")
    return float(acc)


def nn_loss(logits, target):
    return torch.nn.functional.cross_entropy(logits, target)


if __name__ == "__main__":
    main()
