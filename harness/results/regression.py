"""Is a sweep slower than a baseline? A verdict per run and cut that noise alone does not trip.

A cut regresses only when two things hold. Its end-to-end times must be significantly larger than
the baseline's: a one-sided Mann-Whitney U test, since timings are skewed and carry the odd
scheduler or GC outlier, which a rank test shrugs off and a t-test does not. And its median must be
slower by more than a tolerance that matters in practice: a long sweep makes a 2% drift
significant, and two noisy samples make a 30% jump look large. Improvements are found the same way
in the other direction and only reported. The verdict is on end-to-end time; the medians of the
phases say which part moved.
"""

import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import pandas as pd
import yaml
from scipy.stats import mannwhitneyu

from harness.errors import BadInput
from harness.results.folder import ResultsFolder
from harness.results.report import load_records
from harness.results.summary import with_pipeline

PHASES = ("edge_ns", "transfer_ns", "cloud_ns")
LATEST = "latest"
_NS_PER_MS = 1e6


class Verdict(StrEnum):
    REGRESSION = "regression"
    MISSING = "missing"
    """Measured in the baseline, absent from the candidate: a failure, since it can no longer be judged."""
    IMPROVEMENT = "improvement"
    NEW = "new"
    """Measured only in the candidate: nothing to compare it with."""
    UNCHANGED = "unchanged"

    @property
    def failed(self) -> bool:
        return self in (Verdict.REGRESSION, Verdict.MISSING)


_ORDER = list(Verdict)


@dataclass(frozen=True)
class CutComparison:
    """One cut of one run. Medians are None on the side that did not measure the cut."""

    run: str
    cut: int
    layer: str
    verdict: Verdict
    baseline_n: int
    candidate_n: int
    baseline_ms: float | None
    candidate_ms: float | None
    p_value: float | None
    """One-sided, in the direction the median moved: 'candidate slower' when it grew, else 'faster'."""
    phase_delta_ms: dict[str, float] = field(default_factory=dict)
    """Candidate minus baseline median per phase of ``PHASES``; empty unless both sides measured the cut."""
    pipeline: str = ""
    """In a sweep over tiers, the pipeline (pipelines leaving the edge at the same cut are compared apart)."""

    @property
    def ratio(self) -> float | None:
        if self.baseline_ms is None or self.candidate_ms is None or self.baseline_ms == 0:
            return None
        return self.candidate_ms / self.baseline_ms

    @property
    def label(self) -> str:
        return f"pipeline {self.pipeline}" if self.pipeline else f"cut {self.cut} ({self.layer})"

    @property
    def name(self) -> str:
        return f"{self.run}/{self.label}"

    @property
    def smallest_p(self) -> float | None:
        """The smallest p-value the exact test can give with these sample sizes (None for a one-sided cut)."""
        if not self.baseline_n or not self.candidate_n:
            return None
        return 1 / math.comb(self.baseline_n + self.candidate_n, self.candidate_n)


@dataclass(frozen=True)
class Comparison:
    """Every cut of a candidate sweep against its baseline; ``cuts`` holds failures first."""

    manifest: str
    baseline: Path
    candidate: Path
    tolerance: float
    alpha: float
    cuts: list[CutComparison]

    def having(self, verdict: Verdict) -> list[CutComparison]:
        return [cut for cut in self.cuts if cut.verdict is verdict]

    @property
    def failed(self) -> bool:
        return any(cut.verdict.failed for cut in self.cuts)

    @property
    def runs(self) -> list[str]:
        return sorted({cut.run for cut in self.cuts})

    def label(self, cut: CutComparison) -> str:
        """A cut as a reader names it: its run is left out when there is only one."""
        return cut.label if len(self.runs) == 1 else cut.name

    def _labels(self, cuts: list[CutComparison]) -> str:
        return ", ".join(self.label(cut) for cut in cuts)

    def verdict_line(self) -> str:
        tolerance = f"{100 * self.tolerance:g}%"
        judged = len(self.cuts) - len(self.having(Verdict.NEW))
        slower, missing = self.having(Verdict.REGRESSION), self.having(Verdict.MISSING)
        if self.failed:
            parts = []
            if slower:
                parts.append(
                    f"{len(slower)} of {judged} cuts slower than baseline by more than {tolerance}: "
                    + self._labels(slower)
                )
            if missing:
                parts.append(f"{len(missing)} of {judged} cuts missing from the candidate: {self._labels(missing)}")
            return "regression: " + "; ".join(parts)
        line = f"no regression: none of {judged} cuts significantly slower than baseline by more than {tolerance}"
        faster, new = self.having(Verdict.IMPROVEMENT), self.having(Verdict.NEW)
        if faster:
            line += f"; {len(faster)} faster by more than {tolerance}: {self._labels(faster)}"
        if new:
            line += f"; {len(new)} new in the candidate: {self._labels(new)}"
        return line

    def power_note(self) -> str | None:
        """Which cuts could never be flagged: too few inferences for the test to reach alpha, whatever the times."""
        powerless = [cut for cut in self.cuts if cut.smallest_p is not None and cut.smallest_p > self.alpha]
        if not powerless:
            return None
        worst = max(powerless, key=lambda cut: cut.smallest_p or 0)
        return (
            f"note: {len(powerless)} of {len(self.cuts)} cuts have too few inferences to be flagged at alpha "
            f"{self.alpha:g} ({worst.baseline_n} in the baseline, {worst.candidate_n} in the candidate give a "
            f"p-value of at least {worst.smallest_p:.2g}); record more repeats"
        )


def parse_tolerance(text: str) -> float:
    """``10%`` or ``0.1``; a bare number of 1 or more is refused, since ``10`` may mean 10% or 1000%."""
    value_text = text.strip().removesuffix("%")
    try:
        value = float(value_text)
    except ValueError:
        value = math.nan
    if text.strip().endswith("%"):
        value /= 100
    elif value >= 1:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise BadInput(f"--tolerance '{text}': expected a percentage like 10% or a fraction below 1 like 0.1")
    return value


def manifest_name(folder: ResultsFolder) -> str:
    """The ``name`` in the manifest a sweep ran: two sweeps compare only when they ran the same manifest."""
    path = folder.manifest
    if not path.is_file():
        raise BadInput(f"{path} does not exist; expected the manifest.rendered.yml a sweep writes")
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise BadInput(f"{path}: not valid YAML ({error}); expected the manifest the sweep ran") from None
    name = manifest.get("name") if isinstance(manifest, dict) else None
    if not isinstance(name, str) or not name:
        raise BadInput(f"{path}: field 'name' is {name!r}; expected the manifest's name")
    return name


def find_baseline(choice: str | Path, root: Path, manifest: str, candidate: Path | None = None) -> Path:
    """``latest``: the newest sweep of ``manifest`` that ended ok, from the catalog of ``root``, other
    than the candidate itself; anything else is a results folder. Looked up before a new sweep runs,
    so that a nightly run without a baseline fails at once instead of after its sweep."""
    if str(choice) != LATEST:
        return Path(choice)
    from harness.results.catalog import Catalog

    found = Catalog(root).latest(manifest, status="ok", exclude=candidate)
    if found is None:
        besides = f" besides {candidate}" if candidate else ""
        raise BadInput(
            f"--baseline latest: the results catalog of {root} holds no sweep of manifest '{manifest}' with "
            f"status ok{besides}; run a sweep first or pass --baseline DIR"
        )
    return found


def _check_models(baseline: ResultsFolder, base: pd.DataFrame, cand: pd.DataFrame) -> None:
    models = cand.groupby("run")["model"].first()
    for run, model in base.groupby("run")["model"].first().items():
        if run in models and models[run] != model:
            raise BadInput(
                f"{baseline.records_parquet}: run '{run}' measured model '{model}'; expected '{models[run]}' "
                "as in the candidate: a baseline must measure the same model"
            )


def _one_sided(base: pd.Series, cand: pd.Series, slower: bool) -> float:
    alternative = "greater" if slower else "less"
    return float(mannwhitneyu(cand.to_numpy(), base.to_numpy(), alternative=alternative).pvalue)


def _compare_cut(
    key: tuple[str, str, int], base: pd.DataFrame, cand: pd.DataFrame, tolerance: float, alpha: float
) -> CutComparison:
    run, pipeline, cut = str(key[0]), str(key[1]), int(key[2])
    layer = str((cand if base.empty else base)["layer"].iloc[0])
    if base.empty or cand.empty:
        verdict = Verdict.NEW if base.empty else Verdict.MISSING
        median = (base if cand.empty else cand)["e2e_ns"].median() / _NS_PER_MS
        return CutComparison(
            run,
            cut,
            layer,
            verdict,
            len(base),
            len(cand),
            median if cand.empty else None,
            median if base.empty else None,
            None,
            pipeline=pipeline,
        )
    base_ms, cand_ms = base["e2e_ns"].median() / _NS_PER_MS, cand["e2e_ns"].median() / _NS_PER_MS
    slower = cand_ms >= base_ms
    p_value = _one_sided(base["e2e_ns"], cand["e2e_ns"], slower)
    verdict = Verdict.UNCHANGED
    if p_value <= alpha and slower and cand_ms > base_ms * (1 + tolerance):
        verdict = Verdict.REGRESSION
    elif p_value <= alpha and not slower and cand_ms < base_ms * (1 - tolerance):
        verdict = Verdict.IMPROVEMENT
    deltas = {phase: (cand[phase].median() - base[phase].median()) / _NS_PER_MS for phase in PHASES}
    return CutComparison(run, cut, layer, verdict, len(base), len(cand), base_ms, cand_ms, p_value, deltas, pipeline)


def compare(
    baseline: Path, candidate: Path, tolerance: float, alpha: float, expected_manifest: str | None = None
) -> Comparison:
    """Every (run, cut) of either sweep, matched by run id and cut index (and pipeline, over tiers).

    Both sweeps must come from the same manifest (``expected_manifest``, when given) and share at
    least one run; a run's model must be the same on both sides.
    """
    if not 0 < alpha < 1:
        raise BadInput(f"--alpha {alpha}: expected a significance level between 0 and 1, like 0.01")
    base_folder, cand_folder = ResultsFolder.open(baseline), ResultsFolder.open(candidate)
    name = manifest_name(cand_folder)
    if expected_manifest is not None and name != expected_manifest:
        raise BadInput(
            f"{cand_folder.manifest}: field 'name' is '{name}'; expected '{expected_manifest}', "
            "the manifest being checked"
        )
    base_name = manifest_name(base_folder)
    if base_name != name:
        raise BadInput(
            f"{base_folder.manifest}: field 'name' is '{base_name}'; expected '{name}' as in the candidate "
            f"{cand_folder.path}: a baseline must be a sweep of the same manifest"
        )
    base, cand = (with_pipeline(load_records(folder)[0]) for folder in (base_folder, cand_folder))
    shared = set(base["run"]) & set(cand["run"])
    if not shared:
        raise BadInput(
            f"{base_folder.path} and {cand_folder.path} share no run (baseline: {', '.join(sorted(set(base['run'])))}; "
            f"candidate: {', '.join(sorted(set(cand['run'])))}); expected the same runs, whose ids name model, "
            "granularity, link and compression"
        )
    _check_models(base_folder, base, cand)
    keys = ["run", "pipeline", "cut"]
    base_cuts, cand_cuts = dict(tuple(base.groupby(keys))), dict(tuple(cand.groupby(keys)))
    empty = base.iloc[0:0]
    cuts = [
        _compare_cut(key, base_cuts.get(key, empty), cand_cuts.get(key, empty), tolerance, alpha)
        for key in sorted(base_cuts.keys() | cand_cuts.keys())
    ]
    cuts.sort(key=lambda item: _ORDER.index(item.verdict))
    return Comparison(name, base_folder.path, cand_folder.path, tolerance, alpha, cuts)
