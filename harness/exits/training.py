"""Training for early exits: the backbone on its own first (where no weights are given), then the
exits on the frozen backbone, each learning from the features at its attach point with its own
cross-entropy, the backbone's weights left exactly as they were (its digest before and after proves
it). Seeded, on CPU, one batch size, so a run repeats."""

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from harness.errors import BadInput
from harness.exits.assemble import ProgressiveModel


def backbone_digest(model: ProgressiveModel) -> str:
    """SHA-256 over the backbone's parameters and buffers, in order: equal before and after training."""
    digest = hashlib.sha256()
    for part in (model.edge, model.cloud):
        for name, tensor in (*part.segments.named_parameters(), *part.segments.named_buffers()):
            digest.update(name.encode())
            digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def exit_features(model: ProgressiveModel, inputs: torch.Tensor) -> list[torch.Tensor]:
    """The tensor live at every exit's attach point, in plan order, for a batch, without gradients."""
    return _through(model, inputs)[0]


def _through(
    model: ProgressiveModel, inputs: torch.Tensor, gradients: bool = False
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One pass of the backbone: the features at every exit, and the model's output."""
    found = []
    with torch.set_grad_enabled(gradients):
        live: tuple = (inputs,)
        for part in (model.edge, model.cloud):
            for number, segment in enumerate(part.segments):
                live = segment(*live)
                live = live if isinstance(live, tuple) else (live,)
                if number < len(part.exits):
                    found.append(live[0])
    return found, live[0]


def train_backbone(
    module: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    batch: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] = lambda epoch, loss: None,
) -> list[float]:
    """Train the whole network on ``inputs`` with cross-entropy (Adam), then leave it in eval mode;
    the mean loss per epoch, each also given to ``on_epoch`` as it ends."""
    torch.manual_seed(seed)
    loss_of = nn.CrossEntropyLoss()
    module.train()
    with _auxiliary_set_aside(module):
        losses = _fit(
            torch.optim.Adam(module.parameters(), lr=learning_rate),
            lambda chosen: loss_of(_main_logits(module(inputs[chosen])), labels[chosen]),
            _Schedule(len(labels), epochs, batch, seed, on_epoch, smallest=2),
        )
        _settle_batch_norm(module, inputs, batch)
    module.eval()
    return losses


def _settle_batch_norm(
    module: nn.Module, inputs: torch.Tensor, batch: int, forward: Callable[[torch.Tensor], object] | None = None
) -> None:
    """Batch normalisation's running statistics recomputed over the training inputs with the trained
    weights, each batch counted alike (``forward``: how the inputs run through ``module``'s layers,
    its own forward unless given). Those kept while training trail weights that kept changing: a
    digits ResNet-18 whose training loss ended at 0.04 to 0.08 scored 0.83 to 0.95 in eval mode from
    one run to the next (its threads sum in a different order each time)."""
    forward = forward or module
    norms = [child for child in module.modules() if isinstance(child, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    with torch.no_grad():
        for start in range(0, len(inputs) - 1, batch):
            forward(inputs[start : start + batch])
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum


AUXILIARY = ("AuxLogits", "aux1", "aux2")
"""The auxiliary classifiers of torchvision's InceptionV3 and GoogLeNet."""


@contextlib.contextmanager
def _auxiliary_set_aside(module: nn.Module) -> Iterator[None]:
    """InceptionV3 and GoogLeNet also run auxiliary classifiers while training. They are no part of
    the model that is split (evaluation skips them) and need a larger input than the model itself
    (InceptionV3's fails below about 140 x 140), so they sit out the training, untouched, and are
    put back for the weights file to hold every parameter the hosts' model has."""
    saved = {name: getattr(module, name) for name in AUXILIARY if isinstance(getattr(module, name, None), nn.Module)}
    for name in saved:
        setattr(module, name, None)
    try:
        yield
    finally:
        for name, child in saved.items():
            setattr(module, name, child)


def _main_logits(output):
    """The classifier's logits (InceptionV3 and GoogLeNet wrap theirs while training)."""
    return getattr(output, "logits", output)


@dataclass(frozen=True)
class _Schedule:
    """Epochs of mini-batches of ``batch`` over ``count`` samples, in a seeded order; a batch smaller
    than ``smallest`` is skipped (batch normalisation needs two samples to train on)."""

    count: int
    epochs: int
    batch: int
    seed: int
    on_epoch: Callable[[int, float], None]
    smallest: int = 1


def _fit(
    optimiser: torch.optim.Optimizer,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    schedule: _Schedule,
) -> list[float]:
    """The mean of ``batch_loss`` over each epoch's samples, each also given to ``on_epoch``."""
    generator = torch.Generator().manual_seed(schedule.seed)
    losses: list[float] = []
    for _ in range(schedule.epochs):
        order = torch.randperm(schedule.count, generator=generator)
        total = 0.0
        for start in range(0, schedule.count, schedule.batch):
            chosen = order[start : start + schedule.batch]
            if len(chosen) < schedule.smallest:
                continue
            optimiser.zero_grad()
            loss = batch_loss(chosen)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(chosen)
        losses.append(total / schedule.count)
        schedule.on_epoch(len(losses), losses[-1])
    return losses


def exit_logits(model: ProgressiveModel, inputs: torch.Tensor, batch: int = 256) -> list[torch.Tensor]:
    """Every exit's logits for ``inputs``, in plan order, then the final classifier's (the model's
    output): what each exit would answer if every sample reached it."""
    heads = [*model.edge.exits, *model.cloud.exits]
    chunks: list[list[torch.Tensor]] = [[] for _ in range(len(heads) + 1)]
    with torch.no_grad():
        for start in range(0, len(inputs), batch):
            features, output = _through(model, inputs[start : start + batch])
            for number, (head, feature) in enumerate(zip(heads, features, strict=True)):
                chunks[number].append(head(feature))
            chunks[-1].append(output)
    return [torch.cat(chunk) for chunk in chunks]


def train_exits(
    model: ProgressiveModel,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    epochs: int = 20,
    batch: int = 64,
    learning_rate: float = 1e-2,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] = lambda epoch, loss: None,
) -> list[float]:
    """Train every exit on the frozen backbone's features of ``inputs``; the mean loss per epoch,
    each also given to ``on_epoch`` as it ends."""
    torch.manual_seed(seed)
    features = exit_features(model, inputs)
    heads = [*model.edge.exits, *model.cloud.exits]
    parameters = [parameter for head in heads for parameter in head.parameters()]
    loss_of = nn.CrossEntropyLoss()
    for head in heads:
        head.train()
    losses = _fit(
        torch.optim.Adam(parameters, lr=learning_rate),
        lambda chosen: sum(
            loss_of(head(feature[chosen]), labels[chosen]) for head, feature in zip(heads, features, strict=True)
        ),
        _Schedule(len(labels), epochs, batch, seed, on_epoch),
    )
    for head in heads:
        head.eval()
    return losses


def train_joint(
    model: ProgressiveModel,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    weights: list[float],
    batch: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] = lambda epoch, loss: None,
) -> list[float]:
    """Backbone and exits trained together (BranchyNet's joint training): the loss is each exit's
    cross-entropy and the final classifier's, weighted by ``weights`` (one per exit in plan order,
    then the final classifier's). The backbone changes, unlike ``train_exits``; left in eval mode."""
    heads = [*model.edge.exits, *model.cloud.exits]
    if len(weights) != len(heads) + 1:
        raise BadInput(f"{len(weights)} loss weights for {len(heads)} exits: expected one per exit, then the final's")
    torch.manual_seed(seed)
    parts = nn.ModuleList([model.edge, model.cloud])
    parameters = list({id(parameter): parameter for parameter in parts.parameters()}.values())
    loss_of = nn.CrossEntropyLoss()

    def batch_loss(chosen: torch.Tensor) -> torch.Tensor:
        features, output = _through(model, inputs[chosen], gradients=True)
        answers = [head(feature) for head, feature in zip(heads, features, strict=True)] + [output]
        return sum(weight * loss_of(answer, labels[chosen]) for weight, answer in zip(weights, answers, strict=True))

    def run_heads(chosen: torch.Tensor) -> list[torch.Tensor]:
        features, _ = _through(model, chosen)
        return [head(feature) for head, feature in zip(heads, features, strict=True)]

    parts.train()
    losses = _fit(
        torch.optim.Adam(parameters, lr=learning_rate),
        batch_loss,
        _Schedule(len(labels), epochs, batch, seed, on_epoch, smallest=2),
    )
    _settle_batch_norm(parts, inputs, batch, run_heads)
    parts.eval()
    return losses
