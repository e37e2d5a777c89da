"""harness regress: a slowed-down edge fails naming its cuts, noise and small drifts pass, the files parse."""

import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import harness.cli
from harness.bench.regress import sweep_folders
from harness.cli import cli
from harness.results import RecordWriter, ResultsFolder
from harness.results.catalog import Catalog
from harness.results.regression import Verdict, compare, parse_tolerance
from tests.fixtures.records import inference

MANIFEST = str(Path(__file__).resolve().parents[2] / "manifests" / "alexnet.yml")
RUN = "alexnet-module-4MBps-none"
MS = 1_000_000
REPEATS = 10
# Per cut: layer and the typical edge, transfer and cloud milliseconds. The edge does no work at cut 0;
# at the other cuts it is most of the time, so a 20% slower edge makes them more than 10% slower.
CUTS = {
    0: ("input", 0.02, 150.0, 12.0),
    3: ("features.2", 40.0, 4.0, 8.0),
    13: ("features.12", 90.0, 1.0, 3.0),
    22: ("classifier.6", 110.0, 0.5, 0.05),
}
SLOWED = "cut 3 (features.2), cut 13 (features.12), cut 22 (classifier.6)"


def write_sweep(
    path: Path,
    seed: int,
    *,
    edge_factor: float = 1.0,
    factor: float = 1.0,
    noise: float = 0.04,
    cuts: dict = CUTS,
    name: str = "alexnet",
    model: str = "alexnet",
    pipelines: dict[str, float] | None = None,
) -> Path:
    """A results folder as a sweep leaves it: each phase of each inference varies by log-normal noise.
    ``pipelines``: as a sweep over tiers, each cut measured once per pipeline, its cloud part scaled
    by the pipeline's factor."""
    rng = np.random.default_rng(seed)
    folder = ResultsFolder(path)
    folder.write_manifest(f"name: {name}\n")
    pipelines = pipelines or {"": 1.0}
    with RecordWriter(folder) as writer:
        measured = ((cut, pipeline, repeat) for cut in cuts for pipeline in pipelines for repeat in range(REPEATS))
        for request, (cut, pipeline, repeat) in enumerate(measured):
            layer, edge_ms, transfer_ms, cloud_ms = cuts[cut]
            edge, transfer, cloud = (
                int(ms * MS * scale * rng.lognormal(0, noise))
                for ms, scale in (
                    (edge_ms, edge_factor * factor),
                    (transfer_ms, factor),
                    (cloud_ms, factor * pipelines[pipeline]),
                )
            )
            writer.append(
                inference(
                    run=RUN,
                    model=model,
                    cut=cut,
                    layer=layer,
                    repeat=repeat,
                    input=repeat % 2,
                    request=request,
                    edge_ns=edge,
                    transfer_ns=transfer,
                    cloud_ns=cloud,
                    started_at_ns=1_700_000_000_000_000_000 + request * MS,
                    pipeline=pipeline,
                )
            )
    return folder.path


def regress(*arguments: str):
    return CliRunner().invoke(cli, ["regress", MANIFEST, *arguments])


@pytest.fixture
def baseline(tmp_path) -> Path:
    return write_sweep(tmp_path / "base", seed=1)


def test_slower_edge_fails_naming_exactly_the_cuts_where_the_edge_works(tmp_path, baseline):
    candidate = write_sweep(tmp_path / "cand", seed=2, edge_factor=1.2)
    result = regress("--results", str(candidate), "--baseline", str(baseline))
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == (
        f"harness: error: regression: 3 of 4 cuts slower than baseline by more than 10%: {SLOWED}"
    )
    assert f"{candidate}/regress.xml\n{candidate}/regress.md\n" in result.stdout
    comparison = compare(baseline, candidate, 0.1, 0.01)
    slowed = {cut.cut: cut for cut in comparison.having(Verdict.REGRESSION)}
    assert sorted(slowed) == [3, 13, 22]
    for cut in slowed.values():
        assert cut.p_value < 1e-4
        # the edge carries the slowdown; transfer and cloud move only by noise
        assert cut.phase_delta_ms["edge_ns"] == pytest.approx(0.2 * CUTS[cut.cut][1], rel=0.25)
        assert abs(cut.phase_delta_ms["transfer_ns"]) < 0.1 * CUTS[cut.cut][2]
    assert comparison.having(Verdict.UNCHANGED)[0].cut == 0


def test_pipelines_leaving_the_edge_at_the_same_cut_are_compared_apart(tmp_path):
    """Over tiers, two pipelines leave the edge at cut 0; only the one through the Jetson got slower."""
    cuts = {0: CUTS[0]}
    via_jetson, direct = "rpi1>0>jetson1>13>gpu1", "rpi1>0>gpu1"
    baseline = write_sweep(tmp_path / "base", seed=1, cuts=cuts, pipelines={via_jetson: 1.0, direct: 1.0})
    candidate = write_sweep(tmp_path / "cand", seed=2, cuts=cuts, pipelines={via_jetson: 3.0, direct: 1.0})
    result = regress("--results", str(candidate), "--baseline", str(baseline))
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == (
        f"harness: error: regression: 1 of 2 cuts slower than baseline by more than 10%: pipeline {via_jetson}"
    )
    comparison = compare(baseline, candidate, 0.1, 0.01)
    assert [(cut.pipeline, cut.verdict) for cut in comparison.cuts] == [
        (via_jetson, Verdict.REGRESSION),
        (direct, Verdict.UNCHANGED),
    ]
    assert f"input of {via_jetson}" in (candidate / "regress.md").read_text()


def test_a_repeat_of_the_baseline_passes(tmp_path, baseline):
    candidate = write_sweep(tmp_path / "cand", seed=3)
    result = regress("--results", str(candidate), "--baseline", str(baseline))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "no regression: none of 4 cuts significantly slower than baseline by more than 10%"
    )


def test_a_significant_two_percent_slowdown_is_not_a_regression(tmp_path):
    baseline = write_sweep(tmp_path / "base", seed=1, noise=0.002)
    candidate = write_sweep(tmp_path / "cand", seed=2, factor=1.02, noise=0.002)
    comparison = compare(baseline, candidate, 0.1, 0.01)
    assert all(cut.p_value < 0.01 and cut.ratio == pytest.approx(1.02, abs=0.005) for cut in comparison.cuts)
    assert {cut.verdict for cut in comparison.cuts} == {Verdict.UNCHANGED}
    result = regress("--results", str(candidate), "--baseline", str(baseline))
    assert result.exit_code == 0, result.output
    # at a 1% tolerance the same slowdown is one
    assert regress("--results", str(candidate), "--baseline", str(baseline), "--tolerance", "1%").exit_code == 1


def test_thirty_percent_from_two_samples_is_not_significant(tmp_path):
    few = {cut: CUTS[cut] for cut in (3,)}
    baseline = write_sweep(tmp_path / "base", seed=1, cuts=few)
    candidate = write_sweep(tmp_path / "cand", seed=2, cuts=few, factor=1.3)
    two = ResultsFolder.open(candidate).records_parquet
    pq.write_table(pq.read_table(two).slice(0, 2), two)
    comparison = compare(baseline, candidate, 0.1, 0.01)
    [cut] = comparison.cuts
    assert cut.ratio > 1.25 and cut.p_value > 0.01 and cut.verdict is Verdict.UNCHANGED
    assert comparison.power_note() == (
        "note: 1 of 1 cuts have too few inferences to be flagged at alpha 0.01 (10 in the baseline, 2 in the "
        "candidate give a p-value of at least 0.015); record more repeats"
    )


def test_junit_xml_counts_failures_missing_and_new_cuts(tmp_path, baseline):
    changed = {cut: CUTS[cut] for cut in (0, 3, 13)} | {7: ("features.6", 50.0, 2.0, 6.0)}
    candidate = write_sweep(tmp_path / "cand", seed=2, edge_factor=1.2, cuts=changed)
    out = tmp_path / "verdict"
    result = regress("--results", str(candidate), "--baseline", str(baseline), "--out", str(out))
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == (
        "harness: error: regression: 2 of 4 cuts slower than baseline by more than 10%: cut 3 (features.2), "
        "cut 13 (features.12); 1 of 4 cuts missing from the candidate: cut 22 (classifier.6)"
    )
    root = ET.parse(out / "regress.xml").getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("5", "3", "1")
    [suite] = root.findall("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures"), suite.get("skipped")) == (RUN, "5", "3", "1")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == [
        f"{RUN}/cut {cut} ({layer})"
        for cut, layer in [
            (0, "input"),
            (3, "features.2"),
            (7, "features.6"),
            (13, "features.12"),
            (22, "classifier.6"),
        ]
    ]
    failures = {name: case.find("failure") for name, case in cases.items() if case.find("failure") is not None}
    assert {name: failure.get("type") for name, failure in failures.items()} == {
        f"{RUN}/cut 3 (features.2)": "regression",
        f"{RUN}/cut 13 (features.12)": "regression",
        f"{RUN}/cut 22 (classifier.6)": "missing",
    }
    message = failures[f"{RUN}/cut 13 (features.12)"].get("message")
    assert message.startswith("median 9") and "x), p-value " in message and "(alpha 0.01, tolerance 10%" in message
    assert cases[f"{RUN}/cut 7 (features.6)"].find("skipped") is not None
    assert not (candidate / "regress.xml").exists()


def test_markdown_starts_with_the_verdict_and_lists_regressions_first(tmp_path, baseline):
    candidate = write_sweep(tmp_path / "cand", seed=2, edge_factor=1.2)
    regress("--results", str(candidate), "--baseline", str(baseline))
    lines = (candidate / "regress.md").read_text().splitlines()
    assert lines[0] == f"# regression: 3 of 4 cuts slower than baseline by more than 10%: {SLOWED}"
    header = lines.index(next(line for line in lines if line.startswith("| run |")))
    assert lines[header] == (
        "| run | cut | layer | baseline ms | candidate ms | ratio | p-value | Δ edge ms | Δ transfer ms | Δ cloud ms "
        "| verdict |"
    )
    rows = [line.split(" | ") for line in lines[header + 2 :]]
    assert [(row[1], row[-1].rstrip(" |")) for row in rows] == [
        ("3", "regression"),
        ("13", "regression"),
        ("22", "regression"),
        ("0", "unchanged"),
    ]


def test_latest_baseline_comes_from_the_catalog_of_the_candidates_root(tmp_path):
    older = write_sweep(tmp_path / "results" / "alexnet-1", seed=1)
    newer = write_sweep(tmp_path / "results" / "alexnet-2", seed=4, edge_factor=1.2)
    other = write_sweep(tmp_path / "results" / "vgg-1", seed=5, name="vgg")
    candidate = write_sweep(tmp_path / "results" / "alexnet-3", seed=2, edge_factor=1.2)
    catalog = Catalog(tmp_path / "results")
    for folder, status in ((older, "ok"), (newer, "failed"), (other, "ok"), (candidate, "ok")):
        catalog.register(folder, status=status)
    result = regress("--results", str(candidate), "--baseline", "latest")
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[0] == f"{candidate} against baseline {older.resolve()}"
    assert result.stderr.splitlines()[-1].endswith(SLOWED)

    alone = write_sweep(tmp_path / "elsewhere" / "alexnet-1", seed=2)
    result = regress("--results", str(alone), "--baseline", "latest")
    assert result.exit_code == 2
    assert result.stderr == (
        f"harness: error: --baseline latest: the results catalog of {alone.parent} holds no sweep of manifest "
        f"'alexnet' with status ok besides {alone}; run a sweep first or pass --baseline DIR\n"
    )


def test_a_new_sweep_without_a_baseline_is_refused_before_it_runs(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.sweep.controller.RESULTS_ROOT", tmp_path / "results")
    ran = []
    monkeypatch.setattr("harness.cli._run_manifest", lambda *args: ran.append(args))
    result = regress("--baseline", "latest")
    assert result.exit_code == 2 and ran == []
    assert result.stderr == (
        f"harness: error: --baseline latest: the results catalog of {tmp_path / 'results'} holds no sweep of "
        "manifest 'alexnet' with status ok; run a sweep first or pass --baseline DIR\n"
    )


def test_bad_inputs_exit_2_naming_the_file_field_and_expected_value(tmp_path, baseline):
    candidate = write_sweep(tmp_path / "cand", seed=2)
    missing = tmp_path / "nowhere"
    result = regress("--results", str(candidate), "--baseline", str(missing))
    assert result.exit_code == 2
    assert result.stderr == (
        f"harness: error: results folder {missing} does not exist; expected a folder written by a sweep\n"
    )
    vgg = write_sweep(tmp_path / "vgg", seed=3, name="vgg")
    result = regress("--results", str(candidate), "--baseline", str(vgg))
    assert result.exit_code == 2
    assert result.stderr == (
        f"harness: error: {vgg}/manifest.rendered.yml: field 'name' is 'vgg'; expected 'alexnet' as in the candidate "
        f"{candidate}: a baseline must be a sweep of the same manifest\n"
    )
    other_model = write_sweep(tmp_path / "resnet", seed=3, model="resnet18")
    result = regress("--results", str(candidate), "--baseline", str(other_model))
    assert result.exit_code == 2
    assert f"run '{RUN}' measured model 'resnet18'; expected 'alexnet'" in result.stderr
    for tolerance in ("ten", "10", "-5%"):
        result = regress("--results", str(candidate), "--baseline", str(baseline), "--tolerance", tolerance)
        assert result.exit_code == 2
        assert result.stderr == (
            f"harness: error: --tolerance '{tolerance}': expected a percentage like 10% or a fraction below 1 "
            "like 0.1\n"
        )
    result = regress("--results", str(candidate), "--baseline", str(baseline), "--alpha", "1.5")
    assert result.exit_code == 2
    assert "--alpha 1.5: expected a significance level between 0 and 1" in result.stderr


def test_tolerance_reads_percent_and_fraction():
    assert parse_tolerance("10%") == pytest.approx(0.1)
    assert parse_tolerance("0.1") == pytest.approx(0.1)
    assert parse_tolerance("2.5%") == pytest.approx(0.025)


def test_bench_false_alarm_rate_from_existing_folders(tmp_path, baseline):
    repeat = write_sweep(tmp_path / "repeat-01", seed=2)
    slowed = write_sweep(tmp_path / "repeat-02", seed=3, edge_factor=1.2)
    result = CliRunner().invoke(cli, ["bench", "regress", "--results", str(baseline), str(repeat), str(slowed)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "false-alarm rate: 1 of 2 unchanged repeats flagged a cut (50%) at alpha 0.01, tolerance 10%"
    )
    rows = [line for line in result.stdout.splitlines() if "repeat-0" in line]
    assert [line.split("│")[4].strip() for line in rows] == ["0", "3"]
    result = CliRunner().invoke(cli, ["bench", "regress", "--results", str(baseline)])
    assert result.exit_code == 2
    assert "--results: expected the baseline folder and at least one repeat" in result.stderr


def test_bench_runs_a_baseline_and_each_repeat_into_folders_of_their_own(tmp_path, monkeypatch):
    ran = []

    def sweep(manifest, inventory, sets, out, dry_run=False):
        ran.append((manifest, str(inventory), sets, out))
        write_sweep(out, seed=len(ran))
        return SimpleNamespace(folder=ResultsFolder.open(out))

    monkeypatch.setattr(harness.cli, "_run_manifest", sweep)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["bench", "regress", "--repeats", "3", "--set", "cuts=[0,3]"])
    assert result.exit_code == 0, result.output
    [root] = (tmp_path / "results").iterdir()
    assert root.name.startswith("bench-regress-")
    assert [out for *_, out in ran] == [
        Path("results") / root.name / name for name in ("baseline", "repeat-01", "repeat-02", "repeat-03")
    ]
    assert {(str(manifest), inventory, sets) for manifest, inventory, sets, _ in ran} == {
        ("manifests/alexnet.yml", "inventory/local", ("cuts=[0,3]",))
    }
    assert result.stdout.splitlines()[-1] == (
        "false-alarm rate: 0 of 3 unchanged repeats flagged a cut (0%) at alpha 0.01, tolerance 10%"
    )
    assert sweep_folders(1, tmp_path) == [tmp_path / "baseline", tmp_path / "repeat-01"]
