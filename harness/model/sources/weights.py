"""Loading weights from a local file without unpickling anything but tensors.

Labs without internet give weights as files at the same path on every host that loads them (the
sweep does not copy them there yet); a state dict saved with ``torch.save`` is read with
``weights_only=True``, which refuses arbitrary objects.
"""

from pathlib import Path

import torch
from torch import nn

from harness.errors import BadInput

_WEIGHT_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def is_weight_file(weights: str) -> bool:
    """Whether ``weights`` names a file rather than a named weight set."""
    return "/" in weights or weights.endswith(_WEIGHT_FILE_SUFFIXES) or Path(weights).exists()


def is_none(weights: str | None) -> bool:
    """Whether the user asked for random initialisation."""
    return weights is None or weights.lower() in ("", "none", "random")


def load_weight_file(module: nn.Module, path_text: str, model_name: str) -> None:
    """Load a state dict from ``path_text`` into ``module``, strictly, with errors naming the file."""
    path = Path(path_text)
    if not path.is_file():
        raise BadInput(f"weights file {path} for model '{model_name}' does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable or unsafe files
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BadInput(f"weights file {path}: not a tensor state dict ({first_line})") from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BadInput(f"weights file {path}: expected a state dict, found {type(state).__name__}")
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches are raised even when not strict
        first_line = str(error).strip().splitlines()[-1].strip()
        raise BadInput(f"weights file {path} does not fit model '{model_name}': {first_line}") from error
    if missing or unexpected:
        raise BadInput(
            f"weights file {path} does not fit model '{model_name}': "
            f"{len(missing)} missing keys (first: {missing[:3]}), "
            f"{len(unexpected)} unexpected keys (first: {unexpected[:3]})"
        )
