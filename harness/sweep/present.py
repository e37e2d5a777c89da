"""What ``harness sweep`` prints when it is done: where the results are and the best cut per run."""

from harness.results.summary import best_cuts, read_summary
from harness.sweep.controller import SweepOutcome


def outcome_lines(outcome: SweepOutcome) -> list[str]:
    folder = outcome.folder.path
    lines = [f"{outcome.records} inferences recorded in {folder}"]
    if outcome.folder.summary.exists():
        for best in best_cuts(read_summary(outcome.folder.summary)).itertuples():
            lines.append(f"{best.run}: best cut {best.cut} ({best.layer}), median total {best.total_ms_median:.1f} ms")
    lines += [f"  {path.relative_to(folder)}" for path in outcome.reports]
    return lines
