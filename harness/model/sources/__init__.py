"""Where models come from: a name resolves to an ``nn.Module`` in eval mode plus its example input.

Each source is one module that registers itself here; the first source that claims a name loads it.
Adding a model family means writing a source, not editing a switch.
"""

import difflib
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from harness.errors import BadInput


@dataclass
class LoadedModel:
    """A model ready to trace.

    ``blocks_are_leaves`` asks the tracer to keep top-level children opaque: for models whose blocks
    trace poorly but whose wiring between blocks is what matters (YOLO's layer list).
    """

    name: str
    module: nn.Module
    input_shape: tuple[int, ...]
    blocks_are_leaves: bool = False


class ModelSource(Protocol):
    """A family of models addressed by name."""

    def claims(self, name: str) -> bool:
        """Whether this source is responsible for ``name`` (it may still fail to load it)."""
        ...

    def load(self, name: str, weights: str | None, classes: int | None = None) -> LoadedModel:
        """Build the model, with ``classes`` outputs where given (a source that cannot refuses), and
        apply ``weights`` (none, a named set, or a local file), eval mode."""
        ...

    def known_names(self) -> Iterable[str]:
        """Names offered as suggestions when a name is not found."""
        ...


_SOURCES: list[ModelSource] = []


def register(source: ModelSource) -> ModelSource:
    """Add a source; earlier registrations are asked first."""
    _SOURCES.append(source)
    return source


INIT_SEED = 0
"""Random initialisation is seeded, so that edge and cloud build the same untrained network."""


def load_model(name: str, weights: str | None = None, classes: int | None = None) -> LoadedModel:
    """Resolve ``name`` through the registered sources and build the model in eval mode, with
    ``classes`` outputs where given (the ten of digits or CIFAR-10 for a zoo classifier)."""
    for source in _SOURCES:
        if source.claims(name):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(INIT_SEED)
                loaded = source.load(name, weights, classes)
            loaded.module.eval()
            return loaded
    known = sorted({known for source in _SOURCES for known in source.known_names()})
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `harness model list`"
    raise BadInput(f"unknown model '{name}'{hint}")


def refuse_classes(name: str, classes: int | None) -> None:
    """For sources whose models have no number of classes to set."""
    if classes is not None:
        raise BadInput(f"model '{name}': classes can be set on torchvision's classifiers only (got {classes})")


def weights_digest(module: nn.Module) -> str:
    """A short digest of every parameter and buffer, by name: equal on two hosts only if the weights
    are (a different torch version can initialise the same untrained model differently)."""
    digest = hashlib.blake2b(digest_size=8)
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def model_names() -> list[str]:
    """Every model name the registered sources can list."""
    return sorted({known for source in _SOURCES for known in source.known_names()})


# The sources claim disjoint sets of names, so the order they register in does not matter.
from harness.model.sources import detection, torchvision_zoo, ultralytics_yolo, user  # noqa: E402,F401
