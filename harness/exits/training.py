"""Training the exits on a frozen backbone: each exit learns from the features at its attach point
with its own cross-entropy, and the backbone's weights are left exactly as they were (its digest
before and after proves it). Seeded, on CPU, one batch size, so a run repeats."""

import hashlib

import torch
from torch import nn

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
    found = []
    with torch.no_grad():
        live: tuple = (inputs,)
        for part in (model.edge, model.cloud):
            for number, segment in enumerate(part.segments):
                live = segment(*live)
                live = live if isinstance(live, tuple) else (live,)
                if number < len(part.exits):
                    found.append(live[0])
    return found


def train_exits(
    model: ProgressiveModel,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    epochs: int = 20,
    batch: int = 64,
    learning_rate: float = 1e-2,
    seed: int = 0,
) -> list[float]:
    """Train every exit on the frozen backbone's features of ``inputs``; the mean loss per epoch."""
    torch.manual_seed(seed)
    features = exit_features(model, inputs)
    heads = [*model.edge.exits, *model.cloud.exits]
    parameters = [parameter for head in heads for parameter in head.parameters()]
    optimiser = torch.optim.Adam(parameters, lr=learning_rate)
    loss_of = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for head in heads:
        head.train()
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch):
            chosen = order[start : start + batch]
            optimiser.zero_grad()
            loss = sum(
                loss_of(head(feature[chosen]), labels[chosen]) for head, feature in zip(heads, features, strict=True)
            )
            loss.backward()
            optimiser.step()
            total += loss.item() * len(chosen)
        losses.append(total / len(order))
    for head in heads:
        head.eval()
    return losses
