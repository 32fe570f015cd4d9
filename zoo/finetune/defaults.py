"""Settings a run chooses when the user leaves them out: batch size, epochs and learning
rate, from the data's size, the technique and the base model.

The rules (each one line, printed with the chosen values at the start of a run):

- **batch size** 32, smaller on small data so that an epoch has at least 8 steps
  (never under 8 samples): 48 images train in batches of 8, not in 2 steps of 32.
- **epochs**: a step budget of 3 epochs, raised to at least ``MIN_STEPS`` optimiser
  steps (more from random weights, which have everything to learn; more still for a
  head on cached features, whose steps cost next to nothing) and cut to at most
  ``MAX_STEPS``; then 1 to ``MAX_EPOCHS`` epochs of it.
- **learning rate** by technique and base: the BERT recipe (5e-5, 2e-5 past 100 M
  parameters) for trained transformers over 5 M parameters trained in full; 3e-4/1e-4
  for larger trained CNNs (past 5 M / 50 M); 1e-3 for small models, LoRA adapters and
  from-scratch training (3e-4 past 20 M); 5e-3 for a new head alone (feature
  extraction); 1e-2 for graph networks.

Each rule holds for the sample sets and user folders in ``benchmarks/user_data.py``;
an explicit option always wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MIN_STEPS = {"trained": 100, "random": 200, "head": 300}
MAX_STEPS = 3000
MAX_EPOCHS = 50
MIN_EPOCH_STEPS = 8
#: techniques that start from the base's trained weights and keep most of them
NEEDS_TRAINED = {"lora": "adapters on random weights learn little",
                 "freeze": "frozen random layers only pass noise on",
                 "feature-extract": "features of random weights carry little",
                 }


@dataclass
class Settings:
    """What a run trains with, and which of it zoo chose."""

    epochs: int
    batch_size: int
    lr: float
    chosen: list[str] = field(default_factory=list)

    def describe(self, *, samples: int, technique: str) -> str:
        """One line: the settings, what they come to in steps, which were chosen."""
        steps = math.ceil(samples / self.batch_size)
        line = (f"settings: {technique}, {self.epochs} epoch{'s' if self.epochs != 1 else ''}"
                f" x {steps} step{'s' if steps != 1 else ''} (batch {self.batch_size}, "
                f"{samples} training samples), lr {self.lr:g}")
        if self.chosen:
            line += f"; chosen by zoo: {', '.join(self.chosen)} (set them to override)"
        return line


def batch_size_for(samples: int) -> int:
    """32, or less so that an epoch of ``samples`` has at least 8 steps (floor 8)."""
    return max(8, min(32, samples // MIN_EPOCH_STEPS))


def epochs_for(samples: int, batch_size: int, *, kind: str) -> int:
    """Epochs for a step budget of 3 epochs within [MIN_STEPS[kind], MAX_STEPS]."""
    per_epoch = max(1, math.ceil(samples / batch_size))
    budget = min(max(3 * per_epoch, MIN_STEPS[kind]), MAX_STEPS)
    return max(1, min(MAX_EPOCHS, round(budget / per_epoch)))


def lr_for(technique: str, *, family: str, params: int, trained: bool) -> float:
    """The learning rate a technique usually wants on this base (see the module doc)."""
    if technique == "feature-extract":
        return 5e-3
    if family == "gnn":
        return 1e-2
    if technique == "lora":
        return 1e-3 if params < 100_000_000 else 2e-4
    if not trained:
        return 1e-3 if params < 20_000_000 else 3e-4
    if params < 5_000_000:          # small trained models (vit.digits: 140 k) move freely
        return 1e-3
    if family == "transformer":
        return 5e-5 if params < 100_000_000 else 2e-5
    return 3e-4 if params < 50_000_000 else 1e-4


def choose(*, technique: str, family: str, params: int, trained: bool, samples: int,
           epochs: int | None, batch_size: int | None, lr: float | None,
           cached_head: bool = False) -> Settings:
    """Fill in what the user left out (``None``); say which were chosen."""
    chosen = []
    if batch_size is None:
        batch_size = batch_size_for(samples)
        chosen.append("batch size")
    if epochs is None:
        kind = "head" if cached_head else ("trained" if trained else "random")
        epochs = epochs_for(samples, batch_size, kind=kind)
        chosen.append("epochs")
    if lr is None:
        lr = lr_for(technique, family=family, params=params, trained=trained)
        chosen.append("lr")
    return Settings(int(epochs), int(batch_size), float(lr), chosen)


def untrained_warning(technique: str, *, ref: str, trained: bool) -> str | None:
    """One line when ``technique`` needs trained weights but ``ref`` is an architecture."""
    if trained or technique not in NEEDS_TRAINED:
        return None
    return (f"warning: --technique {technique} on '{ref}', an architecture with random "
            f"weights: {NEEDS_TRAINED[technique]}; start from a trained model "
            f"(zoo list --pretrained) or use --technique full")
