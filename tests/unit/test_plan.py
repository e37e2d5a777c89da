"""``harness plan``: partitioners' picks from profiles taken here or saved by a sweep."""

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from harness.cli import cli
from harness.model import Granularity, build_split_graph, load_model

MANIFEST = "tests/fixtures/manifests/plan.yml"
RUN = "tiny_skipnet-node-100kBps-none"


def _saved_profiles(folder, edge_ms: float, cloud_ms: float, model="experiments.models:tiny_skipnet"):
    split = build_split_graph(load_model("experiments.models:tiny_skipnet"), Granularity.NODE)
    rows = [
        {
            "host": role,
            "role": role,
            "run": RUN,
            "model": model,
            "layer": layer.name,
            "op": layer.op,
            "median_ns": int(ms * 1e6),
            "p95_ns": int(ms * 1e6),
            "repeats": 10,
        }
        for role, ms in (("edge", edge_ms), ("cloud", cloud_ms))
        for layer in split.layers
    ]
    folder.mkdir()
    pd.DataFrame(rows).to_parquet(folder / "layers.parquet")


def test_plan_from_saved_profiles_picks_the_lowest_predicted_total(tmp_path):
    """Edge 10 ms a layer, cloud 1 ms, 100 kB/s: the cheapest cut is 9 (64 bytes after the pooling,
    two layers left), by the regressions and by the min cut alike."""
    _saved_profiles(tmp_path / "saved", 10.0, 1.0)
    result = CliRunner().invoke(cli, ["plan", MANIFEST, "--profile", str(tmp_path / "saved"), "--json"])
    assert result.exit_code == 0, result.output
    (planned,) = json.loads(result.stdout)
    assert planned["run"] == RUN
    picks = {row["partitioner"]: row["cut"] for row in planned["decisions"]}
    assert picks == {"neurosurgeon": 9, "dads": 9, "fixed cut=3": 3}
    dads = {row["cut"]: row["predicted_ms"] for row in planned["predictions"] if row["partitioner"] == "dads"}
    assert len(dads) == 12 and min(dads, key=dads.get) == 9
    assert dads[11] == 110 + 1e3 * (40 + 40) / 1e5


def test_plan_here_profiles_and_prints_a_table(tmp_path):
    result = CliRunner().invoke(cli, ["plan", MANIFEST, "--set", "rate=1GB/s", "--repeats", "2"])
    assert result.exit_code == 0, result.output
    assert "tiny_skipnet-node-1GBps-none: predicted end-to-end latency per cut" in result.stdout
    lines = [line for line in result.stdout.splitlines() if " picks cut " in line]
    assert [line.split(": ")[1].split(" picks")[0] for line in lines] == ["neurosurgeon", "dads", "fixed cut=3"]


def test_plan_refuses_profiles_of_another_model_and_two_sources(tmp_path):
    _saved_profiles(tmp_path / "saved", 1.0, 1.0, model="alexnet")
    result = CliRunner().invoke(cli, ["plan", MANIFEST, "--profile", str(tmp_path / "saved")])
    assert result.exit_code == 2
    assert "holds no profile of model 'experiments.models:tiny_skipnet'; it has alexnet" in result.stderr
    both = CliRunner().invoke(cli, ["plan", MANIFEST, "--profile", str(tmp_path), "-i", "inventory/local"])
    assert both.exit_code == 2 and "--inventory and --profile: give one" in both.stderr


def _records(folder, totals_ms: dict[int, float]):
    zero = dict.fromkeys(("edge_ns", "transfer_ns", "cloud_decode_ns", "cloud_ns", "cloud_encode_ns"), 0)
    rows = [
        {"run": RUN, "cut": cut, "layer": "x", **zero, "e2e_ns": int(ms * 1e6), "bytes_raw": 1, "bytes_wire": 1}
        for cut, ms in totals_ms.items()
    ]
    pd.DataFrame(rows).to_parquet(folder / "records.parquet")


def test_oracle_plans_only_where_every_cut_was_measured(tmp_path):
    saved = tmp_path / "saved"
    _saved_profiles(saved, 10.0, 1.0)
    _records(saved, {0: 50.0})
    args = ["plan", MANIFEST, "--profile", str(saved), "--json"]
    (partial,) = json.loads(CliRunner().invoke(cli, args).stdout)
    assert [row["partitioner"] for row in partial["decisions"]] == ["neurosurgeon", "dads", "fixed cut=3"]
    assert all(row["regret"] is None for row in partial["decisions"])
    assert all(row["measured_ms"] is None for row in partial["predictions"])
    _records(saved, {cut: 100.0 - cut for cut in range(12)})
    manifest = tmp_path / "plan.yml"
    text = Path(MANIFEST).read_text()
    manifest.write_text(text.replace("evaluate: [neurosurgeon, dads,", "evaluate: [oracle, dads,"))
    (full,) = json.loads(CliRunner().invoke(cli, ["plan", str(manifest), "--profile", str(saved), "--json"]).stdout)
    oracle = full["decisions"][0]
    assert (oracle["partitioner"], oracle["cut"], oracle["regret"]) == ("oracle", 11, 1.0)
    assert full["decisions"][1]["regret"] == 91.0 / 89.0
