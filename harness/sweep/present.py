"""What ``harness sweep`` prints when it is done: where the results are and the best cut (or pipeline) per run."""

import pandas as pd
from rich.table import Table

from harness.console import make_table
from harness.results.summary import best_cuts, read_summary
from harness.sweep.controller import SweepOutcome
from harness.sweep.pipelines import SweepPipelines


def outcome_lines(outcome: SweepOutcome) -> list[str]:
    folder = outcome.folder.path
    uploads = outcome.folder.upload_summary
    if uploads.exists():
        summary = pd.read_csv(uploads)
        done = int(summary["repeats"].sum())
        lines = [f"{outcome.records - done} inferences and {done} uploads recorded in {folder}"]
        for row in summary.itertuples(index=False):
            lines.append(
                f"{row.run}: {row.partitions} partitions, {row.queries_before_end:.1f} queries before the upload "
                f"ended (predicted {row.predicted_queries}, simulated {row.simulated_queries})"
            )
    else:
        lines = [f"{outcome.records} inferences recorded in {folder}"]
    if outcome.folder.summary.exists():
        for best in best_cuts(read_summary(outcome.folder.summary)).itertuples():
            where = f"pipeline {best.pipeline}" if best.pipeline else f"cut {best.cut} ({best.layer})"
            lines.append(f"{best.run}: best {where}, median total {best.total_ms_median:.1f} ms")
    lines += [f"  {path.relative_to(folder)}" for path in outcome.reports]
    return lines


def pipelines_table(chosen: SweepPipelines) -> Table:
    """The pipelines a sweep over tiers will measure, and which strategy chose each, with its prediction."""
    table = make_table(
        "pipelines to measure",
        ["run", "pipeline", "chosen by", "predicted ms>"],
        caption="a pipeline: the edge host, then each cut and the worker host that runs from it",
    )
    for run, pipelines in chosen.runs.items():
        for pipeline in pipelines:
            choices = [choice for choice in chosen.choices if choice.run == run and choice.pipeline == pipeline.label]
            predicted = f"{choices[0].predicted_ms:,.2f}" if choices and choices[0].predicted_ms is not None else "-"
            table.add_row(run, pipeline.label, ", ".join(choice.strategy for choice in choices), predicted)
    return table
