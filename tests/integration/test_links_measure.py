"""Measuring the link matrix between workers on loopback: every ordered pair probed by its sender's
worker in rounds of disjoint pairs, a dead or unlisted peer a gap with a warning, never a crash."""

import json
import math
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from harness.cli import cli
from harness.links.matrix import read_matrix
from harness.links.measure import ProbeSettings, measure_links
from harness.results.catalog import Catalog
from harness.sweep.topology import worker_places
from harness.wire.frames import Pace
from tests.integration.test_sweep import free_port


def _endpoints(names) -> dict[str, str]:
    return {name: f"tcp://127.0.0.1:{free_port()}" for name in names}


def _start_all(start_worker, endpoints: dict[str, str], unlisted: str = "") -> None:
    """A worker at each endpoint, listing every other one as a peer (except ``unlisted``'s)."""
    for name, endpoint in endpoints.items():
        others = [] if name == unlisted else [peer for other, peer in endpoints.items() if other != name]
        start_worker("--bind", endpoint, *(argument for peer in others for argument in ("--peer", peer)))


def test_every_pair_is_measured_and_a_dead_host_is_a_gap_with_a_warning(start_worker, tmp_path):
    endpoints = _endpoints(["a", "b", "c", "d"])
    _start_all(start_worker, endpoints)
    dead = f"tcp://127.0.0.1:{free_port()}"
    out = tmp_path / "links.parquet"
    arguments = ["links", "measure", "--timeout", "1", "--bulk-mb", "1", "--out", str(out), "--root", str(tmp_path)]
    arguments.append("--json")
    for name, endpoint in [*endpoints.items(), ("dead", dead)]:
        arguments += ["--worker", f"{name}={endpoint}"]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    assert "warning: dead: every pair a gap (the worker of dead did not answer a ping" in result.stderr
    matrix = read_matrix(out)
    rows = {(row["src"], row["dst"]): row for row in json.loads(result.stdout)}
    assert len(rows) == 20
    for (src, dst), row in rows.items():
        i, j = matrix.index(src), matrix.index(dst)
        if "dead" in (src, dst):
            assert row["source"] == "gap" and math.isnan(matrix.rate[i, j])
            assert row["note"].startswith("the worker of dead did not answer a ping")
        else:
            assert row["source"] == "probe" and matrix.rate[i, j] > 1e6 and 0 < matrix.rtt_s[i, j] < 0.5
    catalog = Catalog(tmp_path)
    entry = catalog.query("SELECT matrix, hosts, pairs, gaps, seconds FROM link_matrices").to_dict("records")
    assert len(entry) == 1 and entry[0]["matrix"] == "links.parquet", "stored relative to the results root"
    assert sorted(entry[0]["hosts"]) == ["a", "b", "c", "d", "dead"]
    assert (entry[0]["pairs"], entry[0]["gaps"]) == (20, 8) and entry[0]["seconds"] > 0
    viewed = catalog.query("SELECT matrix, src, dst, source FROM links WHERE source = 'probe'")
    assert len(viewed) == 12 and set(viewed["matrix"]) == {"links.parquet"}


def test_a_worker_that_may_not_probe_its_peer_leaves_a_gap_and_the_round_goes_on(start_worker):
    endpoints = _endpoints(["a", "b", "c"])
    _start_all(start_worker, endpoints, unlisted="c")
    rounds = []
    measured = measure_links(endpoints, None, ProbeSettings(echoes=2, bulk_bytes=2**16, timeout_s=2), rounds.append)
    assert measured.rounds == len(rounds) == 6
    gaps = {(src, dst): note for src, dst, note in measured.matrix.gaps()}
    assert set(gaps) == {("c", "a"), ("c", "b")}
    assert all("is not one of this worker's peers" in note for note in gaps.values())
    assert len(measured.warnings) == 2 and measured.warnings[0].startswith("c -> ")
    assert measured.matrix.source[("a", "c")] == "probe" and measured.matrix.source[("b", "a")] == "probe"


def test_a_paced_probe_measures_the_emulated_link_of_its_pair(start_worker):
    endpoints = _endpoints(["a", "b"])
    _start_all(start_worker, endpoints)
    paces = {("a", "b"): Pace(2e6, 5_000_000), ("b", "a"): None}
    settings = ProbeSettings(echoes=3, bulk_bytes=2**19, timeout_s=5)
    matrix = measure_links(endpoints, None, settings, paces=paces).matrix
    rate, rtt = matrix.rate[matrix.index("a"), matrix.index("b")], matrix.rtt_s[matrix.index("a"), matrix.index("b")]
    assert 0.9 * 2e6 <= rate <= 2e6, "held for bytes/rate: never faster, and late only by loopback's own time"
    assert 0.010 <= rtt < 0.030, "the delay both ways, in each echo"
    assert matrix.rate[matrix.index("b"), matrix.index("a")] > 2e7, "an unpaced pair runs at loopback's speed"


def test_measuring_an_inventory_starts_a_worker_per_host_and_stops_them(tmp_path):
    out = tmp_path / "links.parquet"
    port = free_port()
    arguments = ["links", "measure", "-i", "inventory/local", "--port", str(port), "--bulk-mb", "1", "--out", str(out)]
    arguments += ["--root", str(tmp_path)]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    matrix = read_matrix(out)
    assert set(matrix.pairs()) == {("edge-local", "cloud-local"), ("cloud-local", "edge-local")}
    assert set(matrix.source.values()) == {"probe"} and (matrix.rate[~np.eye(2, dtype=bool)] > 1e6).all()
    assert worker_places(Path("inventory/local"), ["edge-local", "cloud-local"], port) == {
        "edge-local": ("127.0.0.1", port),
        "cloud-local": ("127.0.0.1", port + 1),
    }, "hosts at one address take consecutive ports"
    registered = Catalog(tmp_path).query("SELECT inventory, pairs, gaps FROM link_matrices").to_dict("records")
    assert registered == [{"inventory": "inventory/local", "pairs": 2, "gaps": 0}]
    stopped = CliRunner().invoke(cli, ["worker", "ping", f"tcp://127.0.0.1:{port}", "--timeout", "0.5"])
    assert stopped.exit_code != 0, "the workers are stopped afterwards"


def test_measuring_asks_for_workers_or_an_inventory_and_names_a_missing_group():
    runner = CliRunner()
    neither = runner.invoke(cli, ["links", "measure"])
    assert neither.exit_code == 2
    assert "expected either --worker HOST=ENDPOINT (repeated) or -i INVENTORY" in neither.stderr
    both = runner.invoke(cli, ["links", "measure", "-i", "inventory/local", "--worker", "a=tcp://127.0.0.1:5"])
    assert both.exit_code == 2 and "expected either --worker" in both.stderr
    missing = runner.invoke(cli, ["links", "measure", "-i", "inventory/local", "--group", "jetson"])
    assert missing.exit_code == 2
    assert "inventory inventory/local: no hosts in group jetson; it has all, cloud, edge" in missing.stderr
    alone = runner.invoke(cli, ["links", "measure", "-i", "inventory/local", "--group", "edge"])
    assert alone.exit_code == 2 and "groups edge have 1 host; expected at least 2" in alone.stderr
