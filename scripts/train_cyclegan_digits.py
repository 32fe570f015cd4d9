"""Train ``cyclegan.digits-edges``: unpaired translation between digits and their outlines.

Domain A is scikit-learn's digits (bilinear 16x16, in [-1, 1]); domain B is the outline
of a digit (3x3 morphological gradient, ``zoo.plugins.gan.training.edges``). Training is
unpaired, as in the paper: A images come from one half of the training split, B images
from the other half, shuffled independently. Because every held-out digit has one true
outline, translations can be scored: mean L1 of ``G_AB(a)`` to ``edges(a)`` and of
``G_BA(edges(a))`` to ``a`` (pixels in [-1, 1]), next to the same figure for the
untranslated input and for a random-init model. Deterministic (fixed seeds). Writes
``zoo/trained/cyclegan-digits-edges.safetensors`` and ``docs/images/cyclegan-digits-edges.png``.

    OMP_NUM_THREADS=1 python scripts/train_cyclegan_digits.py [--epochs N] [--subset N] [--out DIR]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zoo.plugins.gan.cyclegan import cyclegan
from zoo.plugins.gan.sampling import tile
from zoo.plugins.gan.training import (
    cyclegan_optimizers,
    cyclegan_step,
    edges,
    finish_digits_script,
    start_digits_script,
)

NAME = "cyclegan-digits-edges"
#: builder kwargs of cyclegan.digits-edges (the catalog's tag kwargs)
KWARGS = {"channels": 1, "ngf": 16, "n_blocks": 2, "ndf": 16, "n_layers": 2}
IMAGE_SIZE = 16


@torch.no_grad()
def translation_l1(model, a: torch.Tensor) -> dict[str, float]:
    """Mean L1 (pixels in [-1, 1]) of each translation of ``a`` to its true counterpart."""
    was = model.training
    model.eval()
    b = edges(a)
    out = {"l1_ab": F.l1_loss(model.G_AB(a), b).item(),
           "l1_ba": F.l1_loss(model.G_BA(b), a).item()}
    model.train(was)
    return {k: round(v, 4) for k, v in out.items()}


@torch.no_grad()
def comparison_grid(model, a: torch.Tensor):
    """Rows of (digit, G_AB(digit), true outline, G_BA(true outline)) as a uint8 RGB grid."""
    was = model.training
    model.eval()
    b = edges(a)
    rows = torch.stack([a, model.G_AB(a), b, model.G_BA(b)], dim=1).flatten(0, 1)
    model.train(was)
    return tile(rows, nrow=4, scale=3)


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate and save the digits <-> outlines CycleGAN; return the figures."""
    args, x, x_test = start_digits_script(argv, name=NAME, epochs=16, batch_size=16,
                                          description=__doc__.splitlines()[0],
                                          image_size=IMAGE_SIZE)
    half = len(x) // 2
    domain_a, domain_b = x[:half], edges(x[half:])  # disjoint digits: no pairs to learn from
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    model = cyclegan(**KWARGS)
    random_init = translation_l1(model, x_test)
    untranslated = {"l1_ab": round(F.l1_loss(x_test, edges(x_test)).item(), 4),
                    "l1_ba": round(F.l1_loss(edges(x_test), x_test).item(), 4)}
    opt_g, opt_d = cyclegan_optimizers(model)
    model.train()
    bs = min(args.batch_size, half)
    for epoch in range(args.epochs):
        pa, pb = torch.randperm(half, generator=g), torch.randperm(len(domain_b), generator=g)
        logs = []
        for i in range(0, half - bs + 1, bs):
            logs.append(cyclegan_step(model, domain_a[pa[i:i + bs]], domain_b[pb[i:i + bs]],
                                      opt_g, opt_d))
        mean = {k: sum(d[k] for d in logs) / len(logs) for k in logs[0]}
        print(f"epoch {epoch + 1}: " + "  ".join(f"{k} {v:.3f}" for k, v in mean.items()),
              flush=True)
    model.eval()
    figures = {"trained": translation_l1(model, x_test), "random_init": random_init,
               "untranslated": untranslated}
    return finish_digits_script(model, args, stem=NAME, figures=figures,
                                grid=comparison_grid(model, x_test[:8]), name="cyclegan",
                                tag="digits-edges", kwargs=KWARGS,
                                dataset="sklearn-digits (synthetic outlines)",
                                fields={"input": {"size": [1, IMAGE_SIZE, IMAGE_SIZE],
                                                  "mean": [0.5], "std": [0.5]}})


if __name__ == "__main__":
    main()
