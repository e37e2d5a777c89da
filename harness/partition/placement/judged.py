"""Placement strategies judged against a sweep over tiers: each one's pipeline, what it predicted
before the sweep, what the sweep measured, and its regret (its measured median over the best
measured pipeline's), with the p-value that it is slower, as the partitioners are judged.

The pipelines measured are all a sweep has: unlike one edge and one cloud, a hierarchy of hosts has
too many placements to measure them all, so the best is the best of those the strategies chose (and
the manifest's own), and a regret of 1 means no measured pipeline was faster.
"""

from pathlib import Path

import pandas as pd

from harness.partition.evaluate import slower_p_value
from harness.results import ResultsFolder
from harness.results.placements import PLACEMENT_COLUMNS, write_placements
from harness.results.summary import with_pipeline


def judge_placements(folder: ResultsFolder, choices: list[dict]) -> Path:
    """``placements.csv`` from the sweep's records and each strategy's choice (run, strategy,
    pipeline, predicted_ms, status, solve_ms, gap)."""
    records = with_pipeline(pd.read_parquet(folder.records_parquet))
    rows = []
    for choice in choices:
        run = records[records["run"] == choice["run"]]
        samples = {
            str(pipeline): group.to_numpy(dtype=float) / 1e6 for pipeline, group in run.groupby("pipeline")["e2e_ns"]
        }
        medians = {pipeline: float(pd.Series(values).median()) for pipeline, values in samples.items()}
        best = min(medians, key=lambda pipeline: (medians[pipeline], pipeline)) if medians else None
        picked = choice["pipeline"]
        measured = medians.get(picked)
        rows.append(
            {
                **choice,
                "measured_ms": measured,
                "best_pipeline": best,
                "best_ms": medians.get(best),
                "regret": measured / medians[best] if measured is not None and best is not None else None,
                "p_slower": slower_p_value(samples, picked, best),
                "inferences": len(samples.get(picked, ())),
            }
        )
    return write_placements(folder, pd.DataFrame(rows, columns=list(PLACEMENT_COLUMNS)))
