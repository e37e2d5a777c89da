"""Example user models, referenced as ``experiments.models:FUNCTION``.

Copy this file to add your own: a function with no arguments that returns an ``nn.Module``; set
``FUNCTION.input_shape`` to give its default example input.
"""

import torch
from torch import nn


class SkipNet(nn.Module):
    """A small residual network: two conv stages, one skip connection, a linear head."""

    def __init__(self, channels: int = 16, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(self.body(x) + x)
        return self.head(torch.flatten(self.pool(x), 1))


def tiny_skipnet() -> nn.Module:
    return SkipNet()


tiny_skipnet.input_shape = (1, 3, 32, 32)


def digits_resnet18() -> nn.Module:
    """torchvision's ResNet-18 with ten classes, for the bundled digits at 32 x 32 (the early-exit
    experiment's model that trains on CPU in seconds)."""
    from harness.model.tvcompat import import_torchvision

    return import_torchvision().models.resnet18(num_classes=10)


digits_resnet18.input_shape = (1, 3, 32, 32)


class HeavyMiddleNet(nn.Module):
    """Two cheap convolutions, then two costly ones at full resolution, then the classifier: an
    early exit before the costly part saves most of the compute, the case early exits are for."""

    def __init__(self, classes: int = 10, width: int = 128):
        super().__init__()
        self.light = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.heavy = nn.Sequential(
            nn.Conv2d(8, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU()
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.heavy(self.light(x))), 1))


def heavy_middle_net() -> nn.Module:
    return HeavyMiddleNet()


heavy_middle_net.input_shape = (1, 3, 32, 32)
