"""Reading back what a sweep over tiers decided: ``placements.csv``, one row per run and strategy,
written by ``harness.partition.placement.judged``, and ``replans.csv``, each re-planning round and
link event; read here so that a report can be rebuilt from the folder alone."""

import pandas as pd

from harness.errors import BadInput
from harness.results.folder import ResultsFolder

PLACEMENT_COLUMNS = (
    "run",
    "strategy",
    "pipeline",
    "predicted_ms",
    "measured_ms",
    "best_pipeline",
    "best_ms",
    "regret",
    "p_slower",
    "inferences",
    "status",
    "solve_ms",
    "gap",
)


def write_placements(folder: ResultsFolder, placements: pd.DataFrame):
    placements.to_csv(folder.placements, index=False)
    return folder.placements


def read_placements(folder: ResultsFolder) -> pd.DataFrame | None:
    if not folder.placements.is_file():
        return None
    placements = pd.read_csv(
        folder.placements,
        dtype={"run": str, "strategy": str, "pipeline": str, "best_pipeline": str},
        keep_default_na=False,
        na_values=[""],
    )
    missing = [column for column in PLACEMENT_COLUMNS if column not in placements.columns]
    if missing:
        raise BadInput(f"{folder.placements}: lacks columns {', '.join(missing)}; expected a sweep's placements")
    return placements


def read_replans(folder: ResultsFolder) -> pd.DataFrame | None:
    """The re-planning rounds and link events of the runs that re-planned, in the order they happened."""
    if not folder.replans.is_file():
        return None
    return pd.read_csv(
        folder.replans,
        dtype={"run": str, "running": str, "best": str, "reason": str},
        keep_default_na=False,
        na_values=[""],
    )
