"""The exits' weights file: one state dict for every exit of a plan, keys ``exit<N>.<name>`` with N
from 1 in plan order (the edge's exits first), written by ``harness exits train`` and read on each
host for the exits of its own part. Tensors only: it is read with ``weights_only``."""

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from harness.errors import BadInput
from harness.exits.assemble import ProgressiveModel


def exit_state(model: ProgressiveModel) -> dict[str, torch.Tensor]:
    """Every exit's parameters and buffers, named by its number in the plan."""
    return {
        f"exit{number}.{name}": tensor.detach().clone()
        for number, head in enumerate(model.heads, start=1)
        for name, tensor in head.module.state_dict().items()
    }


def load_exit_weights(path: Path, heads: Sequence[nn.Module], first: int = 1) -> None:
    """Load exits ``first``, ``first + 1``, ... of the file at ``path`` into ``heads``, strictly."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise BadInput(f"exit weights {path}: cannot be read ({str(error).splitlines()[0]})") from None
    if not isinstance(state, dict):
        raise BadInput(f"exit weights {path}: expected a state dict, found {type(state).__name__}")
    for number, head in enumerate(heads, start=first):
        prefix = f"exit{number}."
        mine = {key.removeprefix(prefix): value for key, value in state.items() if key.startswith(prefix)}
        try:
            head.load_state_dict(mine, strict=True)
        except RuntimeError as error:
            raise BadInput(f"exit weights {path} do not fit exit {number}: {str(error).splitlines()[0]}") from None
