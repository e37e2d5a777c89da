"""``harness place``: every strategy's placement of a manifest's tiers on an inventory's hosts,
priced per stage, with the measured link matrix's gaps respected and bad input named."""

import json
import math

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.links.matrix import LinkMatrix

INVENTORY = """\
all:
  children:
    rpi:
      hosts:
        rpi-1: {harness_speed: 0.1}
        rpi-2: {harness_speed: 0.12}
    jetson:
      hosts:
        jetson-1: {harness_speed: 0.5, harness_memory_bytes: 5000000}
    gpu:
      hosts:
        gpu-1: {harness_speed: 5}
"""

MANIFEST = """\
name: tiers
hosts: {tiers: [rpi, jetson, gpu]}
model: {name: alexnet}
placement: {name: dp, objective: latency}
link: {rate: 10MB/s, delay: 5ms}
"""


@pytest.fixture
def lab(tmp_path):
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.yml").write_text(INVENTORY)
    (tmp_path / "tiers.yml").write_text(MANIFEST)
    return tmp_path


def place(lab, *extra):
    arguments = ["place", str(lab / "tiers.yml"), "-i", str(lab / "inventory"), "--repeats", "2", *extra]
    return CliRunner().invoke(cli, arguments)


def test_every_strategy_places_the_tiers_and_dp_is_the_optimum(lab):
    result = place(lab, "--json")
    assert result.exit_code == 0, result.output
    rows = {row["strategy"]: row for row in json.loads(result.stdout)}
    assert sorted(rows) == ["cloud-only", "device-only", "dp", "even-split", "exhaustive", "genetic", "ilp"]
    best = rows["dp"]
    assert best["chosen"] and best["status"] == "optimal" and best["gap_to_dp"] == 0
    assert rows["ilp"]["predicted_ms"] == pytest.approx(best["predicted_ms"], rel=1e-6)
    assert rows["exhaustive"]["status"] == "skipped" and "expected at most 2,000,000" in rows["exhaustive"]["skipped"]
    for row in rows.values():
        if row["predicted_ms"] is None:
            continue
        assert row["predicted_ms"] >= best["predicted_ms"] * (1 - 1e-9)
        assert sum(stage["ms"] for stage in row["stages"]) == pytest.approx(row["predicted_ms"], rel=1e-9)
        assert row["cuts"] == sorted(set(row["cuts"])) and len(row["cuts"]) == len(row["workers"])
        assert set(row["workers"]) <= {"jetson-1", "gpu-1"}
        computing = [stage["from"] for stage in row["stages"] if stage["kind"] == "compute"]
        edge_computes = not row["cuts"] or row["cuts"][0] > 0
        assert computing == ["rpi-1"] * edge_computes + row["workers"]
    assert rows["device-only"]["cuts"] == [] and rows["cloud-only"]["cuts"] == [0]
    assert rows["cloud-only"]["workers"] == ["gpu-1"]
    table = place(lab)
    assert table.exit_code == 0, table.output
    assert "dp *" in table.stdout and "stages of dp" in table.stdout and "rpi-1 sends the input" in table.stdout


def test_throughput_prices_the_slowest_stage(lab):
    result = place(lab, "--json", "--objective", "throughput", "--strategy", "dp", "--strategy", "cloud-only")
    assert result.exit_code == 0, result.output
    for row in json.loads(result.stdout):
        assert row["objective"] == "throughput"
        assert row["predicted_ms"] == pytest.approx(max(stage["ms"] for stage in row["stages"]), rel=1e-9)


def test_a_gap_in_the_link_matrix_is_never_a_hop(lab):
    """Only rpi-1 -> jetson-1 -> gpu-1 -> rpi-1 and back are linked: the optimum with the GPU has to
    go through the Jetson, and the Jetson's memory keeps alexnet's fully connected layers off it."""
    hosts = ["rpi-1", "rpi-2", "jetson-1", "gpu-1"]
    matrix = LinkMatrix.empty(hosts)
    for src, dst in [("rpi-1", "jetson-1"), ("jetson-1", "gpu-1"), ("gpu-1", "rpi-1"), ("jetson-1", "rpi-1")]:
        matrix.record(src, dst, 10e6, 0.01, "probe")
    matrix.mark_gap("rpi-1", "gpu-1", "probe timed out")
    links = matrix.write(lab / "links.parquet")
    result = place(lab, "--json", "--links", str(links))
    assert result.exit_code == 0, result.output
    for row in json.loads(result.stdout):
        hops = {(stage["from"], stage["to"]) for stage in row["stages"] if stage["kind"] == "hop"}
        assert ("rpi-1", "gpu-1") not in hops, row["strategy"]
        assert all(math.isfinite(stage["ms"]) for stage in row["stages"])
    best = next(row for row in json.loads(result.stdout) if row["strategy"] == "dp")
    assert best["workers"] == ["jetson-1", "gpu-1"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("inventory", "    jetson:", "    jets:"),
            "has no hosts in group 'jetson' (hosts.tiers[1]); it has: gpu, jets, rpi",
        ),
        (
            ("inventory", "harness_speed: 5", "harness_speed: fast"),
            "host gpu-1: harness_speed is 'fast'; expected a number above 0",
        ),
        (
            ("inventory", "harness_speed: 5", "harness_memory_bytes: 0"),
            "host gpu-1: harness_memory_bytes is 0; expected",
        ),
        (("manifest", "name: dp,", "name: simplex,"), "tiers.yml:4: field placement.name: expected one of cloud-only"),
    ],
    ids=["group", "speed", "memory", "strategy"],
)
def test_bad_input_is_one_line_and_exit_2(lab, change, expected):
    which, old, new = change
    path = lab / ("inventory/hosts.yml" if which == "inventory" else "tiers.yml")
    path.write_text(path.read_text().replace(old, new))
    result = place(lab)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_links_without_a_host_of_the_tiers_are_refused(lab):
    links = LinkMatrix.empty(["rpi-1", "gpu-1"]).write(lab / "links.parquet")
    result = place(lab, "--links", str(links))
    assert result.exit_code == 2
    assert f"{links}: no links of host rpi-2, jetson-1; expected every host of the tiers" in result.stderr


def test_the_manifests_own_pipelines_are_priced_and_one_that_does_not_fit_is_refused_at_its_line(lab):
    manifest = lab / "tiers.yml"
    manifest.write_text(MANIFEST.replace("placement: {name: dp, objective: latency}", "cuts: [[3, 5], [0, 3]]"))
    result = place(lab, "--json", "--strategy", "dp")
    assert result.exit_code == 0, result.output
    rows = {row["strategy"]: row for row in json.loads(result.stdout)}
    assert rows["given [3, 5]"]["cuts"] == [3, 5] and rows["given [3, 5]"]["workers"] == ["jetson-1", "gpu-1"]
    assert rows["given [0, 3]"]["stages"][0] == {
        "kind": "hop",
        "from": "rpi-1",
        "to": "jetson-1",
        "first_cut": 0,
        "last_cut": 0,
        "ms": pytest.approx(rows["given [0, 3]"]["stages"][0]["ms"]),
    }
    for name in ("given [3, 5]", "given [0, 3]"):
        assert rows[name]["status"] == "given" and rows[name]["gap_to_dp"] >= 0
    manifest.write_text(MANIFEST.replace("placement: {name: dp, objective: latency}", "cuts: [[3, 5], [3, 13]]"))
    refused = place(lab)
    assert refused.exit_code == 2
    assert refused.stderr.startswith(
        f"harness: error: {manifest}:4: field cuts[1]: pipeline [3, 13]: segments 4..13 need "
    )
    assert refused.stderr.rstrip().endswith("B on jetson-1, which has 5000000 B")


def test_a_sweeps_profile_of_a_host_replaces_the_scaled_one(lab, alexnet_split):
    """gpu-1's own layers take 1 ms each; every other host keeps this machine's profile over its speed."""
    rows = [
        {
            "host": "gpu-1",
            "role": "cloud",
            "run": "r",
            "model": "alexnet",
            "layer": layer.name,
            "op": layer.op,
            "median_ns": 1_000_000,
            "p95_ns": 1_000_000,
            "repeats": 1,
        }
        for layer in alexnet_split.layers
    ]
    folder = lab / "results"
    folder.mkdir()
    pd.DataFrame(rows).to_parquet(folder / "layers.parquet")
    result = place(lab, "--json", "--strategy", "cloud-only", "--profile", str(folder))
    assert result.exit_code == 0, result.output
    (row,) = [row for row in json.loads(result.stdout) if row["strategy"] == "cloud-only"]
    (compute,) = [stage for stage in row["stages"] if stage["kind"] == "compute"]
    assert compute["from"] == "gpu-1" and compute["ms"] == pytest.approx(len(alexnet_split.layers))
    missing = place(lab, "--profile", str(lab))
    assert missing.exit_code == 2 and "cannot read per-layer profiles" in missing.stderr
