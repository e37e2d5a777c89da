"""Reading a sweep's partitioner judgements back: ``decisions.csv`` and ``predictions.parquet``.

Written by ``harness.partition.evaluate`` when a manifest lists ``evaluate``; read here so a report
can be rebuilt from the folder alone.
"""

import pandas as pd

from harness.errors import BadInput
from harness.results.folder import ResultsFolder

DECISION_COLUMNS = (
    "run",
    "partitioner",
    "cut",
    "layer",
    "argmin",
    "argmin_regret",
    "predicted_ms",
    "measured_ms",
    "best_cut",
    "best_ms",
    "regret",
    "p_slower",
    "decision_us",
    "note",
    "energy_regret",
)


def read_decisions(folder: ResultsFolder) -> pd.DataFrame | None:
    if not folder.decisions.is_file():
        return None
    decisions = pd.read_csv(folder.decisions, keep_default_na=False, na_values=[""])
    for later in ("p_slower", "energy_regret"):
        if later not in decisions.columns:
            decisions[later] = float("nan")  # judged before the column was recorded
    missing = [column for column in DECISION_COLUMNS if column not in decisions.columns]
    if missing:
        raise BadInput(
            f"{folder.decisions}: lacks columns {', '.join(missing)}; expected a sweep's partitioner decisions"
        )
    decisions["note"] = decisions["note"].fillna("").astype(str)
    return decisions


def read_predictions(folder: ResultsFolder) -> pd.DataFrame | None:
    return pd.read_parquet(folder.predictions) if folder.predictions.is_file() else None
