"""Re-planning over the virtual lab: a sweep over three tiers whose links the lab shapes with tc on
its bridge, a steady stream of inferences, and mid-run the device's link to the cloud is cut to a
trickle by ``harness lab link``, as an operator would. Nothing in the run is told of the change:
the edge's own probes find it, and it switches pipelines make-before-break without losing one.

The device holds only the first convolutions (a host variable of the lab's spec), so every
placement offloads: straight to the cloud while that link is fast, through the Jetson once it is not.

Needs root, ``ip netns``, ``tc`` and OpenSSH's server; skipped elsewhere (as the lab's other tests are).
"""

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.integration.conftest import REPO
from tests.integration.test_adapt_sweep import adapt_manifest
from tests.integration.test_sweep import free_port
from tests.integration.test_vlab_sweep import _harness, _skip_unless_possible, lab_down_leaves_nothing, lab_up

pytestmark = pytest.mark.xdist_group("lab")

EVERY_S = 1.5
REPEATS = 160
BEFORE = 40
"""Records the edge has spooled when the link drops: two rounds of probes have seen it fast."""
FAST, SLOW = "8MB/s", "500kB/s"


def _manifest(tmp_path):
    adapt = f"every_s: {EVERY_S}, min_gain: 0.1, rounds: 2, probe_kb: 128"
    return adapt_manifest(tmp_path / "adapt.yml", adapt, f"{{rate: {FAST}}}", free_port(), repeats=REPEATS)


def _spooled(path) -> int:
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0


def test_a_link_cut_by_tc_mid_run_is_found_by_the_probes_and_planned_around(tmp_path, short_tmp):
    _skip_unless_possible()
    prefix = f"a{os.getpid()}-"
    spec = {
        "prefix": prefix,
        "subnet": "10.235.0.0/24",
        "hosts": [
            {"name": "rpi1", "group": "rpi", "vars": {"harness_memory_bytes": 2_000_000}},
            {"name": "jetson1", "group": "jetson", "vars": {"harness_memory_bytes": 20_000_000}},
            {"name": "gpu1", "group": "gpu"},
            {"name": "observer1", "group": "observer"},
        ],
        "links": {"default": {"rate": FAST}, "pairs": [{"src": "rpi1", "dst": "jetson1", "rate": "4MB/s"}]},
    }
    state_dir, inventory_dir, scratch, env, veths = lab_up(spec, tmp_path, short_tmp)
    try:
        out = tmp_path / "results"
        command = [sys.executable, "-m", "harness.cli", "sweep", str(_manifest(tmp_path)), "-i", str(inventory_dir)]
        log = tmp_path / "sweep.log"
        with log.open("w") as output:
            sweep = subprocess.Popen([*command, "--out", str(out)], cwd=REPO, env=env, stdout=output, stderr=output)
            deadline = time.monotonic() + 400
            while not (out / "sweep.id").is_file() and sweep.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            sweep_id = (out / "sweep.id").read_text().strip()
            spool = state_dir / "hosts" / "rpi1" / "root" / f"spool-{sweep_id}" / "records.jsonl"
            while _spooled(spool) < BEFORE and sweep.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sweep.poll() is None, log.read_text()[-3000:]
            dropped = _harness(env, "lab", "link", "rpi1", "gpu1", "--rate", SLOW, "--state-dir", str(state_dir))
            dropped_ns = time.time_ns()
            assert dropped.returncode == 0, dropped.stderr
            assert sweep.wait(timeout=400) == 0, log.read_text()[-3000:]

        records = pd.read_parquet(out / "records.parquet").sort_values("started_at_ns")
        assert len(records) == REPEATS and sorted(records["repeat"]) == list(range(REPEATS))
        assert not (out / "failures.csv").exists(), "no inference failed"
        assert set(records["shaping"]) == {"none"}, "the lab shapes the links, the harness nothing more"
        environment = json.loads((out / "environment.json").read_text())
        assert {link["shaping"] for links in environment["links"].values() for link in links} == {"none"}
        replans = pd.read_csv(out / "replans.csv")
        shown = replans[["at_s", "running", "running_ms", "best", "best_ms", "gain", "streak", "reason"]]
        print(shown.to_string())
        switches = replans[replans["switched"]]
        assert len(switches) == 1, shown
        switch = switches.iloc[0]
        assert switch["at_ns"] > dropped_ns
        after_drop = replans[replans["at_ns"] > dropped_ns]
        assert after_drop["at_ns"].le(switch["at_ns"]).sum() <= 3, "switched within three intervals"
        old, new = switch["running"], switch["best"]
        assert old == "rpi1>6>gpu1" and new.startswith("rpi1>6>jetson1"), shown
        assert set(records["pipeline"]) == {old, new}

        degraded = records[(records["started_at_ns"] > dropped_ns) & (records["pipeline"] == old)]["e2e_ns"]
        before = records[records["started_at_ns"] < dropped_ns]["e2e_ns"]
        after = records[records["pipeline"] == new]["e2e_ns"]
        medians = {
            name: float(part.median()) / 1e6
            for name, part in [("before", before), ("degraded", degraded), ("after", after)]
        }
        print({name: round(value, 1) for name, value in medians.items()}, f"switch {switch['switch_ms']:.0f} ms")
        assert len(degraded) >= 2 and len(after) >= 20, medians
        assert medians["after"] <= 0.8 * medians["degraded"], medians
        links = json.loads(switch["links"])
        assert links["rpi1->gpu1"] <= 0.6e6 and links["rpi1->jetson1"] >= 3.4e6, links
    except BaseException:
        if "sweep" in locals() and sweep.poll() is None:
            sweep.kill()
            sweep.wait()
        _harness(env, "lab", "down", "--state-dir", str(state_dir))
        raise
    lab_down_leaves_nothing(env, prefix, state_dir, veths)
