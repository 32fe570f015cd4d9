"""LeNet-5 (LeCun et al., 1998): the classic digit recogniser, 32x32 greyscale in."""

from __future__ import annotations

import torch
from torch import nn


class LeNet5(nn.Module):
    """Two conv/pool stages and three fully connected layers, as in the paper.

    ReLU and max pooling replace the paper's scaled tanh and trainable subsampling,
    as every modern reimplementation does; the layer sizes are the paper's.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(inplace=True),
            nn.Linear(120, 84), nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.classifier(self.features(x)))


def lenet5(*, num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """Build LeNet-5 for ``in_channels`` x 32 x 32 images."""
    return LeNet5(num_classes=num_classes, in_channels=in_channels)
