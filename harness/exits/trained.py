"""Where trained exits live: ``harness exits train`` writes each model's backbone and exits into a
folder of its own, and a sweep reads them from there (kept apart from the weights' code, so that
the manifest's matrix can name the files without loading any model code)."""

import re
from pathlib import Path

BACKBONE, EXITS = "backbone.pt", "exits.pt"


def trained_root(manifest_name: str) -> Path:
    """Where ``harness exits train`` writes, and a sweep reads, unless the manifest says otherwise."""
    return Path("results") / f"{manifest_name}-exits"


def trained_folder(root: str | Path, model: str) -> Path:
    """A model's folder of trained weights under ``root``, named after the model."""
    return Path(root) / re.sub(r"[^A-Za-z0-9_.-]", "-", model)
