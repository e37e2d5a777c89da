"""Re-planning during a sweep over three tiers on this machine: a steady stream of inferences, the
emulated link between the device and the cloud drops mid-run, and the edge measures the links again,
re-solves and switches pipelines, make-before-break, without losing an inference.

The device holds only the first convolutions (``harness_memory_bytes``), so every placement
offloads: straight to the cloud while the links are fast, through the edge host once the device's
link to the cloud is slow.
"""

import shutil

import pandas as pd
import pytest

from tests.integration.test_sweep import _left_behind, harness, hosts_dir  # noqa: F401 (a fixture)

pytestmark = pytest.mark.xdist_group("lab")
"""A sweep of minutes, run in the lane of the virtual lab's sweeps (where there is no lab, the lane is
otherwise empty) so that the two lanes of ``scripts/test`` take about as long."""

REPO_VARS = "inventory/local/group_vars/all.yml"
EVERY_S = 1.5
EVENT_S = 5.0
REPEATS = 160


def _lab(tmp_path):
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    shutil.copy(REPO_VARS, inventory / "group_vars" / "all.yml")
    (inventory / "hosts.yml").write_text(
        """all:
  children:
    rpi: {hosts: {rpi-local: {harness_memory_bytes: 2000000}}}
    jetson: {hosts: {jetson-local: {harness_memory_bytes: 20000000}}}
    gpu: {hosts: {gpu-local: {}}}
"""
    )
    manifest = adapt_manifest(
        tmp_path / "adapt.yml",
        f"every_s: {EVERY_S}, min_gain: 0.1, rounds: 2, probe_kb: 64",
        "{rate: 10MB/s, shaping: emulated}",
        "{{ port }}",
        f"link_events: [{{at_s: {EVENT_S}, pair: [rpi, gpu], rate: 500kB/s}}]",
    )
    return inventory, manifest


def adapt_manifest(path, adapt: str, link: str, port: int | str, more: str = "", repeats: int = REPEATS):
    """AlexNet placed by dp over the tiers rpi, jetson and gpu, re-planned as ``adapt`` says."""
    path.write_text(
        f"""name: adapt
hosts: {{tiers: [rpi, jetson, gpu]}}
model: {{name: alexnet}}
placement: dp
adapt: {{{adapt}}}
partitioner: {{name: cyclic, repeats: {repeats}}}
threads: 1
link: {link}
worker: {{port: {port}}}
{more}
"""
    )
    return path


def test_a_link_that_drops_mid_run_is_planned_around_without_losing_an_inference(hosts_dir, tmp_path):  # noqa: F811
    inventory, manifest = _lab(tmp_path)
    out = tmp_path / "results"
    done = harness(hosts_dir, "sweep", str(manifest), "-i", str(inventory), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    records = pd.read_parquet(out / "records.parquet").sort_values("started_at_ns")
    assert len(records) == REPEATS and sorted(records["repeat"]) == list(range(REPEATS))
    assert not (out / "failures.csv").exists(), "no inference failed"
    replans = pd.read_csv(out / "replans.csv")
    events = replans[replans["trigger"] == "link event"]
    assert len(events) == 1 and events["reason"].iloc[0] == "rpi-local->gpu-local, gpu-local->rpi-local at 500000 B/s"
    switches = replans[replans["switched"]]
    assert len(switches) == 1, replans[["at_s", "trigger", "running", "best", "gain", "reason"]]
    event_s, switch = events["at_s"].iloc[0], switches.iloc[0]
    assert switch["at_s"] > event_s
    rounds_between = replans[(replans["trigger"] == "interval") & (replans["at_s"] > event_s)]
    assert rounds_between["at_s"].le(switch["at_s"]).sum() <= 3, "switched within three intervals"
    old, new = switch["running"], switch["best"]
    assert old == "rpi-local>6>gpu-local" and "jetson-local" in new
    assert set(records["pipeline"]) == {old, new}

    started = (records["started_at_ns"] - records["started_at_ns"].min()) / 1e9
    degraded = records[(started > event_s + 0.5) & (records["pipeline"] == old)]["e2e_ns"]
    after = records[records["pipeline"] == new]["e2e_ns"]
    assert len(degraded) >= 2 and len(after) >= 20
    assert after.median() <= 0.8 * degraded.median(), (after.median() / 1e6, degraded.median() / 1e6)
    hops = pd.read_parquet(out / "hops.parquet")
    assert set(hops[hops["pipeline"] == new]["host"]) == {"jetson-local", "gpu-local"}
    assert (out / "latency_over_time_alexnet-module-10MBps-emulated-none.png").is_file()
    assert "Re-planning" in (out / "report.html").read_text()
    assert _left_behind(hosts_dir) == []
