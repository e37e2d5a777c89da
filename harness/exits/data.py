"""Labelled sets that need no download, and the stratified split a training run records.

``digits``: scikit-learn's bundled handwritten digits (1,797 images of 8 x 8, ten classes), resized
to the model's input, the stand-in for the seed's CIFAR-10. ``easy-hard``: a seeded synthetic set
whose samples are known to be easy or hard, what checks that early exits answer easy inputs early
needs.

Each class has a prototype image: a colour of its own (a level per channel, which survives the
pooling an exit starts with; the classes evenly around grey) over a random pattern. An easy sample
is its class's prototype under a little noise; a hard one lies half way between its class's
prototype and another's, where a classifier can only be unsure, so that a shallow one is sure of
the first and unsure of the second.
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import BadInput


@dataclass(frozen=True)
class LabelledSet:
    inputs: torch.Tensor
    labels: torch.Tensor
    hard: torch.Tensor | None = None
    """True where the sample is hard, where that is known."""

    @property
    def classes(self) -> int:
        return int(self.labels.max()) + 1


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


EASY_HARD_CLASSES = 4
LABELLED_CLASSES = {"digits": 10, "easy-hard": EASY_HARD_CLASSES}
"""The labelled datasets exits train and are judged on (and codecs' accuracy measured on), by their
number of classes."""
EASY_HARD_COUNT = 1200
DIGITS_LEVELS = 16.0
"""The bundled digits' pixels are counts of 0 to 16 (of a 4 x 4 block of the original scan)."""


def labelled_set(name: str, shape: tuple[int, ...]) -> LabelledSet:
    """The whole labelled set ``name`` (``digits`` or ``easy-hard``) as inputs of ``shape``
    (channels, height, width)."""
    if len(shape) != 3:
        raise BadInput(f"dataset '{name}': expected an input of (channels, height, width), got {list(shape)}")
    if name == "digits":
        return digits_set(shape)
    if name == "easy-hard":
        return easy_hard_set(EASY_HARD_COUNT, shape, EASY_HARD_CLASSES)
    raise BadInput(f"dataset '{name}' has no labels: expected digits or easy-hard to train exits on")


def digits_set(shape: tuple[int, ...]) -> LabelledSet:
    """The 1,797 digits, each scaled to [0, 1], resized bilinearly to ``shape``'s height and width,
    copied to every channel and standardised by the set's own mean and deviation."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / DIGITS_LEVELS).unsqueeze(1)
    resized = F.interpolate(images, size=tuple(shape[1:]), mode="bilinear", align_corners=False)
    inputs = resized.expand(-1, shape[0], -1, -1).contiguous()
    inputs = (inputs - inputs.mean()) / inputs.std()
    return LabelledSet(inputs, torch.from_numpy(bunch.target.astype(np.int64)))


@dataclass(frozen=True)
class Split:
    """Indices into a labelled set: what trains, what picks thresholds, what reports."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def record(self) -> dict[str, list[int]]:
        return {name: sorted(int(index) for index in getattr(self, name)) for name in ("train", "validation", "test")}


def stratified_split(labels: torch.Tensor, validation: float, test: float, seed: int) -> Split:
    """Each class in the same proportions in all three parts, the same parts for the same seed."""
    from sklearn.model_selection import train_test_split

    if not (0 < validation < 1 and 0 < test < 1 and validation + test < 1):
        raise BadInput(f"split validation {validation}, test {test}: expected shares above 0 that sum below 1")
    everything = np.arange(len(labels))
    targets = labels.numpy()
    rest, tested = train_test_split(everything, test_size=test, stratify=targets, random_state=seed)
    trained, validated = train_test_split(
        rest, test_size=validation / (1 - test), stratify=targets[rest], random_state=seed
    )
    return Split(np.sort(trained), np.sort(validated), np.sort(tested))


@dataclass(frozen=True)
class Batches:
    """What a sweep feeds a model from a labelled set: ``count`` batches, and where each batch is one
    sample, its true class (``labels`` is None for larger batches)."""

    inputs: list[torch.Tensor]
    labels: list[int] | None


def batches(data: LabelledSet, count: int, batch: int, order: Sequence[int] | None = None) -> Batches:
    """``count`` batches of ``batch`` samples taken in turn from ``order`` (default: the set's own)."""
    cycle = itertools.cycle(range(len(data.labels)) if order is None else order)
    picked = [[next(cycle) for _ in range(batch)] for _ in range(count)]
    inputs = [data.inputs[indices] for indices in picked]
    labels = [int(data.labels[indices[0]]) for indices in picked] if batch == 1 else None
    return Batches(inputs, labels)
