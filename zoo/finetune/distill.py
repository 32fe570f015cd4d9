"""Knowledge distillation: the student learns the teacher's softened class distribution.

Loss (Hinton et al., 2015)::

    alpha * KL(log_softmax(s / T) || softmax(t / T)) * T**2  +  (1 - alpha) * CE(s, y)

with ``reduction="batchmean"`` for the KL term (the mathematically right mean) and the
``T**2`` factor keeping the soft-target gradients on the same scale as the hard ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor, *,
                 temperature: float = 4.0, alpha: float = 0.7,
                 label_smoothing: float = 0.0, reduction: str = "mean") -> torch.Tensor:
    """Temperature-scaled KL to the teacher plus hard-label cross-entropy.

    ``reduction="sum"`` returns the per-sample sum (used when gradients of several
    processes are summed), ``"mean"`` the batch mean.
    """
    t = float(temperature)
    kl = F.kl_div(F.log_softmax(student / t, dim=-1), F.softmax(teacher / t, dim=-1),
                  reduction="sum") * t * t
    ce = F.cross_entropy(student, target, label_smoothing=label_smoothing, reduction="sum")
    total = alpha * kl + (1 - alpha) * ce
    return total / student.shape[0] if reduction == "mean" else total
