"""Builders of the example plugin (torch is imported here, only when a model is built)."""

from torch import nn


def tiny_mlp(*, in_features: int = 64, hidden: int = 32, num_classes: int = 10) -> nn.Module:
    """Flatten, one hidden layer, a linear head."""
    model = nn.Sequential()
    model.add_module("body", nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU()))
    model.add_module("head", nn.Linear(hidden, num_classes))
    return model
