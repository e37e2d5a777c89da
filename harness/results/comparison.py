"""Two registered sweeps side by side: median end-to-end time per run and cut, B over A, and a chart.

Runs are matched by name and cut by index, which stay the same across sweeps of one manifest (and
over tiers by pipeline too); a (run, cut) only one sweep measured is kept with the other side
empty, so nothing silently drops out. ``layer`` names the pipeline beside the layer, over tiers.
"""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.errors import BadInput
from harness.results.catalog import Catalog
from harness.results.charts import comparison_by_cut
from harness.results.folder import safe_name
from harness.results.summary import layer_label

COLUMNS = ("run", "pipeline", "cut", "layer", "a_ms", "b_ms", "ratio")


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    rows: pd.DataFrame
    """One row per (run, cut) either sweep measured, with the columns of ``COLUMNS``; ratio is B/A."""
    chart: Path


def compare(catalog: Catalog, a: str, b: str, out: Path | None = None) -> Comparison:
    """Sweep ``b`` against sweep ``a``; the chart goes to ``out`` (default: b's folder) as compare-<a>.png."""
    sides = [
        catalog.cut_medians(run_id)[["run", "pipeline", "cut", "layer", "total_ms_median"]].rename(
            columns={"total_ms_median": column, "layer": f"layer_{column}"}
        )
        for run_id, column in ((a, "a_ms"), (b, "b_ms"))
    ]
    rows = sides[0].merge(sides[1], on=["run", "pipeline", "cut"], how="outer", sort=True)
    if rows[["a_ms", "b_ms"]].notna().all(axis=1).sum() == 0:
        raise BadInput(
            f"sweeps '{a}' (runs {', '.join(sides[0]['run'].unique())}) and '{b}' (runs "
            f"{', '.join(sides[1]['run'].unique())}) share no run and cut; expected two sweeps of the same runs"
        )
    layers = rows["layer_a_ms"].fillna(rows["layer_b_ms"])
    rows["layer"] = [layer_label(layer, pipeline) for layer, pipeline in zip(layers, rows["pipeline"], strict=True)]
    rows["ratio"] = rows["b_ms"] / rows["a_ms"]
    rows = rows[list(COLUMNS)].reset_index(drop=True)
    folder = Path(out) if out is not None else catalog.entry(b)["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    return Comparison(a, b, rows, comparison_by_cut(rows, a, b, folder / f"compare-{safe_name(a)}.png"))
