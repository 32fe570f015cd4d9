"""Fine-tuning: techniques (full, freeze, feature extraction, LoRA, distillation, SFT),
data loading, the training loop, checkpoints and resume.

    >>> from zoo.finetune import finetune
    >>> result = finetune("lenet5", "digits", technique="full", out="runs/lenet", epochs=5)
    >>> result.metrics
    {'accuracy': 0.97, 'macro_f1': 0.97, 'val_loss': 0.1}

Importing this package is cheap; torch loads when :func:`finetune` runs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TECHNIQUES", "finetune"]

TECHNIQUES = ("full", "freeze", "feature-extract", "lora", "distill", "sft")


def finetune(*args: Any, **kwargs: Any):
    """Fine-tune a model; see :func:`zoo.finetune.api.finetune` for every option."""
    from zoo.finetune.api import finetune as _finetune

    return _finetune(*args, **kwargs)
