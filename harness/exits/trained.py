"""Where trained exits live: ``harness exits train`` writes each model's backbone into a folder of
its own, and the exits of each placement into a folder beside it (``<model>/linear/``), and a sweep
reads them from there (kept apart from the weights' code, so that the manifest's matrix can name
the files without loading any model code)."""

import re
import shutil
from pathlib import Path

BACKBONE, EXITS = "backbone.pt", "exits.pt"


def trained_root(manifest_name: str, given: str | Path | None = None) -> Path:
    """Where ``harness exits train`` writes and a sweep reads: ``given`` (``exits.trained``, or
    ``--out``), else ``results/<manifest name>-exits``."""
    return Path(given) if given else Path("results") / f"{manifest_name}-exits"


def trained_folder(root: str | Path, model: str) -> Path:
    """A model's folder of trained weights under ``root``, named after the model."""
    return Path(root) / re.sub(r"[^A-Za-z0-9_.-]", "-", model)


def exits_folder(root: str | Path, model: str, placement: str) -> Path:
    """The folder of a model's exits trained for ``placement``, beside its backbone."""
    return trained_folder(root, model) / placement


KEPT = ("training.json", "exit*.py")
"""What a results folder keeps of the trained exits: the record, and the Python of every exit."""


def keep_trained(root: str | Path, model: str, placement: str, destination: Path) -> None:
    """Copy the training record and exit sources of one model and placement under ``destination``
    (``<model>/<placement>/``), so the results say what ran without the trained folder."""
    source = exits_folder(root, model, placement)
    target = exits_folder(destination, model, placement)
    target.mkdir(parents=True, exist_ok=True)
    for pattern in KEPT:
        for path in sorted(source.glob(pattern)):
            shutil.copy2(path, target / path.name)


def backbone_file(root: str | Path, model: str, placement: str, joint: bool) -> Path:
    """The backbone a placement's exits were trained with: the model's one, or with joint training
    (which changes the backbone) the placement's own."""
    return (exits_folder(root, model, placement) if joint else trained_folder(root, model)) / BACKBONE
