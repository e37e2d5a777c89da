"""A regression verdict for CI and for people: JUnit XML that CI servers show as test results (one
suite per run, one case per cut), a Markdown summary for a pull request or a mail, and the same
table in the terminal. Every figure comes from the ``Comparison``; nothing is computed here.
"""

from pathlib import Path

from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite
from rich.table import Table

from harness.console import make_table
from harness.results.regression import PHASES, Comparison, CutComparison, Verdict
from harness.results.summary import layer_label

JUNIT_FILE = "regress.xml"
MARKDOWN_FILE = "regress.md"
COLUMNS = [
    "run",
    "cut>",
    "layer",
    "baseline ms>",
    "candidate ms>",
    "ratio>",
    "p-value>",
    *(f"Δ {phase.removesuffix('_ns')} ms>" for phase in PHASES),
    "verdict",
]


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def cut_row(cut: CutComparison) -> list[str]:
    ratio = _number(cut.ratio, ".3f")
    return [
        cut.run,
        str(cut.cut),
        layer_label(cut.layer, cut.pipeline),
        _number(cut.baseline_ms, ".2f"),
        _number(cut.candidate_ms, ".2f"),
        "-" if cut.ratio is None else f"{ratio}x",
        _number(cut.p_value, ".2g"),
        *(_number(cut.phase_delta_ms.get(phase), "+.2f") for phase in PHASES),
        cut.verdict.value,
    ]


def _explanation(comparison: Comparison) -> str:
    return (
        f"Candidate {comparison.candidate} against baseline {comparison.baseline} (manifest {comparison.manifest}): "
        f"end-to-end time per cut; a regression is slower at alpha {comparison.alpha:g} (one-sided Mann-Whitney U) "
        f"and by more than {100 * comparison.tolerance:g}% on the median; Δ: candidate minus baseline median of "
        "each phase."
    )


def regression_table(comparison: Comparison) -> Table:
    table = make_table(comparison.verdict_line(), COLUMNS, _explanation(comparison))
    for cut in comparison.cuts:
        table.add_row(*cut_row(cut), style="bold red" if cut.verdict.failed else None)
    return table


def markdown(comparison: Comparison) -> str:
    """The verdict on the first line, then how it was reached, then the table, failures first."""
    names = [column.removesuffix(">") for column in COLUMNS]
    lines = [f"# {comparison.verdict_line()}", "", _explanation(comparison)]
    note = comparison.power_note()
    if note:
        lines += ["", note]
    lines += [
        "",
        "| " + " | ".join(names) + " |",
        "|" + "|".join("---:" if column.endswith(">") else "---" for column in COLUMNS) + "|",
        *("| " + " | ".join(cut_row(cut)) + " |" for cut in comparison.cuts),
    ]
    return "\n".join(lines) + "\n"


def _medians(cut: CutComparison, comparison: Comparison) -> str:
    return (
        f"median {cut.baseline_ms:.2f} ms -> {cut.candidate_ms:.2f} ms ({cut.ratio:.3f}x), p-value {cut.p_value:.2g} "
        f"(alpha {comparison.alpha:g}, tolerance {100 * comparison.tolerance:g}%, {cut.baseline_n} baseline and "
        f"{cut.candidate_n} candidate inferences)"
    )


def _phases(cut: CutComparison) -> str:
    return "phases: " + ", ".join(
        f"{phase.removesuffix('_ns')} {delta:+.2f} ms" for phase, delta in cut.phase_delta_ms.items()
    )


def _test_case(cut: CutComparison, comparison: Comparison) -> TestCase:
    median_ms = cut.candidate_ms if cut.candidate_ms is not None else cut.baseline_ms
    case = TestCase(cut.name, classname=cut.run, time=round((median_ms or 0) / 1e3, 6))
    if cut.verdict is Verdict.MISSING:
        case.result = [
            Failure(
                f"missing from the candidate (baseline median {cut.baseline_ms:.2f} ms over {cut.baseline_n} "
                "inferences)",
                "missing",
            )
        ]
    elif cut.verdict is Verdict.NEW:
        case.result = [Skipped(f"new in the candidate (median {cut.candidate_ms:.2f} ms): no baseline to compare")]
    else:
        medians, phases = _medians(cut, comparison), _phases(cut)
        if cut.verdict is Verdict.REGRESSION:
            failure = Failure(medians, "regression")
            failure.text = f"{medians}; {phases}"
            case.result = [failure]
        else:
            case.system_out = f"{cut.verdict.value}: {medians}; {phases}"
    return case


def junit(comparison: Comparison) -> JUnitXml:
    document = JUnitXml(f"regress {comparison.manifest}")
    for run in comparison.runs:
        suite = TestSuite(run)
        for cut in sorted((cut for cut in comparison.cuts if cut.run == run), key=lambda cut: (cut.cut, cut.pipeline)):
            suite.add_testcase(_test_case(cut, comparison))
        suite.update_statistics()
        document.add_testsuite(suite)
    document.update_statistics()
    return document


def write_outputs(comparison: Comparison, out: Path) -> list[Path]:
    """``regress.xml`` and ``regress.md`` in ``out``, made if needed; a previous verdict there is replaced."""
    out.mkdir(parents=True, exist_ok=True)
    xml_path, markdown_path = out / JUNIT_FILE, out / MARKDOWN_FILE
    junit(comparison).write(str(xml_path), pretty=True)
    markdown_path.write_text(markdown(comparison), encoding="utf-8")
    return [xml_path, markdown_path]
