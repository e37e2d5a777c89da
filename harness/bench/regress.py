"""How often ``harness regress`` cries wolf: sweeps of an unchanged setup compared with a baseline.

Every repeat runs the same manifest on the same hosts and code, so any cut it flags is a false
alarm. The rate is the share of repeats that flagged at least one cut: what a nightly check with
these --alpha and --tolerance settings costs in runs someone investigates for nothing.
"""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from harness.results.regression import compare
from harness.sweep.controller import RESULTS_ROOT


@dataclass(frozen=True)
class RepeatVerdict:
    repeat: int
    folder: Path
    cuts: int
    flagged: int
    """Cuts judged slower than the baseline, or missing from the repeat."""
    worst_ratio: float | None
    """The largest candidate / baseline median of end-to-end time over the cuts both measured."""
    min_p_value: float | None
    """The smallest p-value of the 'slower' test, over the cuts whose median grew."""
    power_note: str | None
    """Why no cut could be flagged, when there were too few inferences per cut (a rate of 0% means nothing then)."""


def sweep_folders(repeats: int, root: Path | None = None, now: datetime | None = None) -> list[Path]:
    """Where the baseline and each repeat go: one folder of their own, so the sweeps of a benchmark are
    never taken for ordinary ones (``--baseline latest`` looks only at a results root's own sweeps)."""
    base = root or RESULTS_ROOT / f"bench-regress-{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}"
    return [base / "baseline", *(base / f"repeat-{index:02d}" for index in range(1, repeats + 1))]


def judge_repeats(folders: list[Path], tolerance: float, alpha: float) -> list[RepeatVerdict]:
    """Each folder after the first compared with the first, the baseline."""
    baseline, *repeats = folders
    rows = []
    for index, folder in enumerate(repeats, start=1):
        comparison = compare(baseline, folder, tolerance, alpha)
        ratios = [cut.ratio for cut in comparison.cuts if cut.ratio is not None]
        slower = [cut.p_value for cut in comparison.cuts if cut.p_value is not None and (cut.ratio or 0) >= 1]
        rows.append(
            RepeatVerdict(
                repeat=index,
                folder=comparison.candidate,
                cuts=len(comparison.cuts),
                flagged=sum(cut.verdict.failed for cut in comparison.cuts),
                worst_ratio=max(ratios, default=None),
                min_p_value=min(slower, default=None),
                power_note=comparison.power_note(),
            )
        )
    return rows


def false_alarm_lines(rows: list[RepeatVerdict], tolerance: float, alpha: float) -> list[str]:
    """The rate last, after each distinct note on repeats too small to be judged."""
    alarms = sum(row.flagged > 0 for row in rows)
    notes = dict.fromkeys(row.power_note for row in rows if row.power_note)
    return [
        *notes,
        f"false-alarm rate: {alarms} of {len(rows)} unchanged repeats flagged a cut ({alarms / len(rows):.0%}) "
        f"at alpha {alpha:g}, tolerance {100 * tolerance:g}%",
    ]
