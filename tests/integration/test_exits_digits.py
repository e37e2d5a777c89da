"""``harness exits train`` on the CI variant of the EdgeLessPart manifest: ResNet-18 with ten classes
trained on the bundled digits at 32 x 32 (the manifest's 8 epochs), then its exits on the frozen
backbone, all on CPU in seconds; then ``harness sweep`` runs those exits on inventory/local's two
hosts, and every sample's exit is the one the same exits give offline."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from harness.exits.assemble import assemble
from harness.exits.data import digits_set, stratified_split
from harness.exits.manifest import plan_for
from harness.exits.weights import load_exit_weights
from harness.manifest import load_manifest
from harness.model import Granularity, build_split_graph, load_model
from harness.results.catalog import Catalog
from tests.integration.conftest import REPO
from tests.integration.test_sweep import harness, hosts_dir  # noqa: F401 - the fixture

MANIFEST = "manifests/edgelesspart.yml"
EXITS = ["--set", "per_part=2"]
SWEPT = [*EXITS, "--set", "samples=40", "--set", "thresholds=[0, 0.9, 1.0]"]
MODEL = "experiments.models:digits_resnet18"


def test_resnet18_on_digits_learns_its_exits_leave_the_backbone_alone_and_run_on_the_hosts(hosts_dir, tmp_path):  # noqa: F811
    out = tmp_path / "exits"
    command = [sys.executable, "-m", "harness.cli", "exits", "train", MANIFEST, *EXITS]
    command += ["--set", "select={max_accuracy_drop: 0.02}", "--out", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout)
    folder = out / "experiments.models-digits_resnet18"
    record = json.loads((folder / "linear" / "training.json").read_text())
    pareto = json.loads((folder / "pareto" / "training.json").read_text())
    assert [item["after"] for item in pareto["plan"]["exits"]] != [item["after"] for item in record["plan"]["exits"]]
    assert record["backbone_digest"]["before_exits"] == record["backbone_digest"]["after_exits"]
    assert {name: len(indices) for name, indices in record["split"].items()} == {
        "train": 1077,
        "validation": 360,
        "test": 360,
    }
    *exits, final = record["accuracy"]["test"]
    assert final >= 0.85, record["accuracy"]
    assert len(exits) == 4 and min(exits) > 2 * 0.1, "every exit well above chance (ten classes)"
    assert [item["part"] for item in record["plan"]["exits"]] == ["edge", "edge", "cloud", "cloud"]
    assert "final classifier" in done.stdout and "test accuracy" in done.stdout

    # Thresholds picked on validation keep its accuracy within the drop; the test part reports them.
    chosen = record["selection"]
    assert len(chosen["thresholds"]) == 4 and all(0 <= value <= 1 for value in chosen["thresholds"])
    assert chosen["validation"]["accuracy"] >= chosen["final_validation"] - 0.02 - 1e-9
    assert chosen["test"]["shares"][0] + chosen["test"]["shares"][1] > 0.5, "most digits leave on the edge"
    assert "thresholds picked on validation within 0.02" in done.stdout

    results = tmp_path / "results"
    swept = harness(hosts_dir, "sweep", MANIFEST, *SWEPT, "--set", f"trained={out}", "--out", str(results))
    assert swept.returncode == 0, swept.stderr[-3000:]
    records = pd.read_parquet(results / "records.parquet")
    _check_against_offline(records, folder, record["split"]["test"])

    # The exits table, the report's section and front, and the catalog's view: one row per
    # placement and threshold, beside the profiled baselines.
    table = pd.read_csv(results / "exits.csv")
    measured = table[table["kind"] == "measured"]
    assert sorted(zip(measured["placement"], measured["threshold"], strict=True)) == [
        (placement, threshold) for placement in ("linear", "pareto") for threshold in (0.0, 0.9, 1.0)
    ]
    for row in measured.itertuples():
        rows = records[records["run"] == row.run]
        assert row.accuracy == pytest.approx((rows["predicted"] == rows["label"]).mean())
        assert row.edge_share == pytest.approx((rows["exit_host"] == "edge").mean())
    assert (measured.loc[measured["threshold"] == 0, "cost_per_1000"] == 0).all(), "nothing reached the cloud"
    assert (measured.loc[measured["threshold"] == 1, "cost_vs_cloud_only"] > 0).all()
    assert measured["front"].any() and (measured["edge_memory_mb"] > measured["cloud_memory_mb"]).all()
    assert (measured["edge_peak_rss_mb"] > 50).all()
    offloading = measured["threshold"] > 0
    assert (measured.loc[offloading, "cloud_peak_rss_mb"] > 50).all()
    assert measured.loc[~offloading, "cloud_peak_rss_mb"].isna().all(), "no sample reached the worker"
    assert sorted(table.loc[table["kind"] == "profiled", "run"]) == ["cloud only", "edge only"]
    page = (results / "report.html").read_text()
    assert "<h2>Early exits</h2>" in page and "exits_front.png" in page
    assert (results / "exits_front.png").stat().st_size > 10_000
    assert (results / "exits" / folder.name / "pareto" / "exit3.py").read_text().startswith("# An exit")
    rows = Catalog(tmp_path).query(
        "SELECT placement, threshold, accuracy FROM exits WHERE kind = 'measured' ORDER BY placement, threshold"
    )
    assert (
        len(rows) == 6
        and rows["accuracy"].tolist() == measured.sort_values(["placement", "threshold"])["accuracy"].tolist()
    )


def _check_against_offline(records: pd.DataFrame, folder: Path, test: list[int]) -> None:
    """Each run's 40 samples are the test part's first 40, labelled; at 0 every sample leaves at the
    first exit and sends nothing; at 1 none leaves early and the answers are the plain model's; at
    0.9 each sample leaves where the same exits, run here, let it. Both placements alike."""
    loaded = load_manifest(Path(REPO) / MANIFEST, [item for item in SWEPT if item != "--set"])
    model = load_model(MODEL, str(folder / "backbone.pt"))
    split = build_split_graph(model, Granularity.MODULE, (1, 3, 32, 32))
    digits = digits_set((3, 32, 32))
    assert test == stratified_split(digits.labels, 0.2, 0.2, 0).test.tolist()
    samples = digits.inputs[test[:40]]
    assert sorted(records["run"].unique()) == sorted(run.id for run in loaded.runs)
    for run in loaded.runs:
        rows = records[records["run"] == run.id].sort_values("input")
        threshold = run.threshold
        plan = plan_for(split, run.exits)
        progressive = assemble(split, plan, "linear", 10)
        load_exit_weights(folder / run.exits.placement[0] / "exits.pt", [head.module for head in progressive.heads])
        assert rows["input"].tolist() == list(range(40)), threshold
        assert rows["label"].tolist() == digits.labels[test[:40]].tolist(), threshold
        assert (rows["cut"] == plan.cut).all()
        expected = [_offline(progressive, samples[index : index + 1], threshold) for index in range(40)]
        assert rows["exit"].tolist() == [number for number, _ in expected], threshold
        assert rows["predicted"].tolist() == [answer for _, answer in expected], threshold
        edge = rows["exit_host"] == "edge"
        assert (rows.loc[edge, "bytes_wire"] == 0).all() and (rows.loc[edge, "cloud_ns"] == 0).all()
        assert (rows.loc[~edge, "bytes_wire"] > 0).all()
    at_zero, at_one = records[records["threshold"] == 0], records[records["threshold"] == 1]
    assert (at_zero["exit"] == 1).all() and (at_zero["exit_host"] == "edge").all()
    assert (at_one["exit"] == 0).all() and (at_one["exit_host"] == "").all()
    with torch.no_grad():
        plain = model.module(samples).argmax(dim=1).tolist()
    for _, rows in at_one.groupby("run"):
        assert rows.sort_values("input")["predicted"].tolist() == plain


def _offline(progressive, sample: torch.Tensor, threshold: float) -> tuple[int, int]:
    """The exit a sample leaves at (0: the final classifier) and its answer, run in this process."""
    edge = progressive.edge(threshold, sample)
    if edge.exit is not None:
        return edge.exit, int(edge.logits.argmax())
    live = edge.live if isinstance(edge.live, tuple) else (edge.live,)
    cloud = progressive.cloud(threshold, *live)
    if cloud.exit is not None:
        return len(progressive.edge.exits) + cloud.exit, int(cloud.logits.argmax())
    return 0, int(cloud.live.argmax())
