"""A labelled set whose samples are known to be easy or hard, made from a seed: what checks that
early exits answer easy inputs early needs, with no download.

Each class has a prototype image: a colour of its own (a level per channel, which survives the
pooling an exit starts with; the classes evenly around grey) over a random pattern. An easy sample
is its class's prototype under a little noise; a hard one lies half way between its class's
prototype and another's, where a classifier can only be unsure, so that a shallow one is sure of
the first and unsure of the second.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LabelledSet:
    inputs: torch.Tensor
    labels: torch.Tensor
    hard: torch.Tensor
    """True where the sample is hard."""


COLOUR, COLOUR_SHIFT, PIXEL_NOISE = 2.0, 0.2, 0.5
"""How far the class colours lie from grey, and the standard deviations of a sample's colour away
from where it should be and of each pixel's noise."""


def easy_hard_set(count: int, shape: tuple[int, ...], classes: int, seed: int = 0) -> LabelledSet:
    """``count`` samples of ``shape`` (channels, height, width), labels cycling through ``classes``,
    every other sample hard; the same tensors for the same arguments on every host."""
    generator = torch.Generator().manual_seed(seed)
    flat = [1] * (len(shape) - 1)
    colours = COLOUR * _colour_directions(classes, shape[0], generator).view(classes, shape[0], *flat)
    prototypes = colours + 0.5 * torch.randn(classes, *shape, generator=generator)
    labels = torch.arange(count) % classes
    hard = torch.arange(count) % 2 == 1
    others = (labels + 1 + torch.randint(0, classes - 1, (count,), generator=generator)) % classes
    blend = torch.where(hard, 0.5, 0.0).view(-1, 1, *flat)
    inputs = (1 - blend) * prototypes[labels] + blend * prototypes[others]
    inputs = inputs + COLOUR_SHIFT * torch.randn(count, shape[0], *flat, generator=generator)
    inputs = inputs + PIXEL_NOISE * torch.randn(count, *shape, generator=generator)
    return LabelledSet(inputs, labels, hard)


def _colour_directions(classes: int, channels: int, generator: torch.Generator) -> torch.Tensor:
    """One unit colour per class: each channel up, then each down (so the classes lie evenly around
    grey, and half way between two of them is truly between), then random ones past 2 x channels."""
    even = torch.cat([torch.eye(channels), -torch.eye(channels)])[:classes]
    extra = torch.randn(max(classes - len(even), 0), channels, generator=generator)
    return torch.cat([even, extra / extra.norm(dim=1, keepdim=True).clamp_min(1e-9)])
