"""``harness sweep`` over three tiers on inventory/local-tiers: workers started per worker host, each
placement strategy's pipeline measured side by side under the emulated link, every hop recorded on
the host that did the work, then everything torn down.

The three "hosts" are this machine, so every placement differs by its links alone: at 1 MB/s the
strategies' pipelines are up to 600 ms of transfer apart, several times AlexNet's compute, and those
whose predictions are far apart rank as measured.
"""

import json

import pandas as pd
import pytest

from harness.results.catalog import Catalog
from tests.integration.test_sweep import _left_behind, harness, hosts_dir  # noqa: F401 (a fixture)

pytestmark = pytest.mark.xdist_group("lab")
"""A sweep of minutes, run in the lane of the virtual lab's sweeps (where there is no lab, the lane is
otherwise empty) so that the two lanes of ``scripts/test`` take about as long."""

RATE = 1e6
REPEATS = 3
TIERS = ["-i", "inventory/local-tiers", "--set", "bandwidth=1MB/s", "--set", "delay=0ms", "--set", f"repeats={REPEATS}"]


def test_a_sweep_over_three_tiers_measures_each_strategys_pipeline(hosts_dir, tmp_path):  # noqa: F811
    out = tmp_path / "results"
    done = harness(hosts_dir, "sweep", "manifests/tiers.yml", *TIERS, "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    chosen = json.loads((out / "pipelines.json").read_text())
    ((run, pipelines),) = chosen["runs"].items()
    labels = [
        ">".join([item["source"], *(f"{cut}>{host}" for cut, host in zip(item["cuts"], item["workers"], strict=True))])
        for item in pipelines
    ]
    assert len(labels) == len(set(labels)) >= 3, "dp, genetic, even-split and cloud-only: at least three pipelines"
    assert all(label.startswith("rpi-local") for label in labels)

    records = pd.read_parquet(out / "records.parquet")
    assert sorted(records["pipeline"].unique()) == sorted(labels)
    assert (records.groupby("pipeline").size() == REPEATS).all()
    hops = pd.read_parquet(out / "hops.parquet")
    for label, item in zip(labels, pipelines, strict=True):
        mine = hops[hops["pipeline"] == label].sort_values(["repeat", "hop"])
        assert len(mine) == REPEATS * len(item["workers"]), label
        for _, inference in mine.groupby("repeat"):
            assert list(inference["host"]) == item["workers"]
            assert list(inference["start_cut"]) == item["cuts"]
            assert list(inference["end_cut"]) == [*item["cuts"][1:], -1]
            assert (inference["compute_ns"] > 0).all() and (inference["busy_ns"] >= inference["compute_ns"]).all()
        ours = records[records["pipeline"] == label]
        if item["workers"]:
            # The first worker receives what leaves the edge; the workers' sum is the record's cloud part.
            first = mine[mine["hop"] == 1].set_index("repeat")["bytes_raw"]
            assert (ours.set_index("repeat")["bytes_raw"] == first).all()
            summed = mine.groupby("repeat")["compute_ns"].sum()
            assert (ours.set_index("repeat")["cloud_ns"] == summed).all()
        else:
            assert (ours["bytes_wire"] == 0).all() and (ours["transfer_ns"] == 0).all()
        # Every hop is paced by its sender and never arrives early: all the bytes that crossed, at the rate.
        by_repeat = ours.set_index("repeat")
        forwarded = mine[mine["hop"] > 1].groupby("repeat")["bytes_wire"].sum()
        crossed = (by_repeat["bytes_wire"] + by_repeat["reply_bytes_wire"]).add(forwarded, fill_value=0)
        assert (by_repeat["transfer_ns"] >= 0.99 * 1e9 * crossed / RATE).all(), label

    placements = pd.read_csv(out / "placements.csv")
    assert list(placements["strategy"]) == ["dp", "genetic", "even-split", "cloud-only"]
    assert set(placements["pipeline"]) <= set(labels)
    best = placements.loc[placements["measured_ms"].idxmin()]
    assert (placements["regret"] - placements["measured_ms"] / best["measured_ms"]).abs().max() < 1e-6
    dp = placements.set_index("strategy").loc["dp"]
    assert dp["gap"] == 0.0 and dp["predicted_ms"] == placements["predicted_ms"].min(), "dp's value is the bound"
    # Every host is this machine, so each pipeline computes the same layers at the same speed and the
    # fastest sends nothing: its prediction is the whole model's compute. Beside the rest of the suite
    # on two cores that compute can take four times as long in one pipeline's inferences and not in
    # another's (a transfer is paced, a wait the load cannot stretch), so only pipelines whose links
    # alone are predicted more than three computes apart must rank as measured.
    distinct = placements.drop_duplicates("pipeline").set_index("pipeline")
    compute_ms = distinct.at["rpi-local", "predicted_ms"]
    assert compute_ms == distinct["predicted_ms"].min(), "the pipeline that sends nothing is the fastest predicted"
    apart = [
        (fast, slow)
        for fast in distinct.index
        for slow in distinct.index
        if distinct.at[slow, "predicted_ms"] - distinct.at[fast, "predicted_ms"] > 3 * compute_ms
    ]
    assert apart, "cloud-only, which sends the input, is predicted more than three computes slower than dp"
    assert [pair for pair in apart if distinct.at[pair[0], "measured_ms"] >= distinct.at[pair[1], "measured_ms"]] == []

    # The sweep's transfers refine the declared link on each pair its tensors crossed; the replies, a
    # few kilobytes, are too small to time and keep it, as do the pairs nothing crossed.
    links = pd.read_parquet(out / f"links_{run}.parquet").set_index(["src", "dst"])
    print(links[["rate_bytes_per_s", "source", "note"]].to_string())
    timed = links[links["source"] == "transfer"]
    assert len(timed) >= 1 and set(links["source"]) <= {"transfer", "declared"}
    assert ((timed["rate_bytes_per_s"] - RATE).abs() <= 0.15 * RATE).all(), timed
    assert (links.loc[links["source"] == "declared", "rate_bytes_per_s"] == RATE).all()
    registered = Catalog(tmp_path).query("SELECT src, dst, source FROM links")
    assert len(registered) == len(links) and set(registered["source"]) == set(links["source"])

    layers = pd.read_parquet(out / "layers.parquet")
    assert sorted(set(zip(layers["role"], layers["host"], strict=True))) >= [
        ("edge", "rpi-local"),
        ("worker", "gpu-local"),
    ]
    report = (out / "report.html").read_text()
    assert "Placement strategies" in report and "total inference time by pipeline" in report
    assert f"time_by_cut_{run}.png" in report
    assert f"{run}: best pipeline {best['pipeline']}" in done.stdout
    assert _left_behind(hosts_dir) == []
