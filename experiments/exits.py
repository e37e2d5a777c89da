"""Exit classifiers written in Python rather than as a template: ``exits: {template:
experiments.exits:pooled_exit}`` calls the function with the attach point's shape."""

import torch
from torch import nn


def pooled_exit(in_shape: list[int], channels: int, num_classes: int) -> nn.Module:
    """Max and average pooling side by side, then one linear layer over both."""
    return _PooledExit(channels, num_classes)


class _PooledExit(nn.Module):
    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.average, self.maximum = nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d(1)
        self.classifier = nn.Linear(2 * channels, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([self.average(features).flatten(1), self.maximum(features).flatten(1)], dim=1)
        return self.classifier(torch.relu(pooled))
