"""``harness links measure -i`` over the virtual lab: a worker started on every host over SSH, with
fresh keys, every ordered pair probed across the namespaces, then workers and keys gone again.

Needs root, ``ip netns`` and OpenSSH's server; skipped elsewhere (as the lab's sweep tests are).
"""

import os
import time

import pandas as pd
import pytest

from tests.integration.test_vlab_sweep import (
    _harness,
    _lab_processes,
    _skip_unless_possible,
    lab_down_leaves_nothing,
    lab_up,
)

pytestmark = pytest.mark.xdist_group("lab")

HOSTS = ["rpi1", "rpi2", "jetson1", "gpu1"]


def test_every_pair_of_four_lab_hosts_is_measured_and_nothing_is_left(tmp_path, short_tmp):
    _skip_unless_possible()
    prefix = f"k{os.getpid()}-"
    groups = {"rpi1": "rpi", "rpi2": "rpi", "jetson1": "jetson", "gpu1": "gpu"}
    spec = {
        "prefix": prefix,
        "subnet": "10.233.0.0/24",
        "hosts": [
            *({"name": name, "group": group} for name, group in groups.items()),
            {"name": "observer1", "group": "observer"},
        ],
    }
    state_dir, inventory_dir, scratch, env, veths = lab_up(spec, tmp_path, short_tmp)
    try:
        out = tmp_path / "links.parquet"
        started = time.monotonic()
        measured = _harness(
            env,
            "links",
            "measure",
            "-i",
            str(inventory_dir),
            "--bulk-mb",
            "2",
            "--out",
            str(out),
            "--root",
            str(tmp_path),
        )
        elapsed = time.monotonic() - started
        assert measured.returncode == 0, measured.stdout + measured.stderr[-3000:]
        assert "warning" not in measured.stderr
        matrix = pd.read_parquet(out)
        assert sorted(zip(matrix["src"], matrix["dst"], strict=True)) == sorted(
            (a, b) for a in HOSTS for b in HOSTS if a != b
        ), "every ordered pair of the lab's hosts, the observer left out"
        assert set(matrix["source"]) == {"probe"}
        assert (matrix["rate_bytes_per_s"] > 1e6).all() and matrix["rtt_s"].between(0, 0.5).all(), matrix
        assert elapsed < 300, f"start, measure and stop took {elapsed:.0f} s"
        hosts_dir = state_dir / "hosts"
        assert not list(hosts_dir.glob("*/root/keys")), "the run's keys are removed from the hosts"
        assert not list(hosts_dir.glob("*/root/worker.pid")), "every worker is stopped"
        assert not list(hosts_dir.glob("*/root/lab.lock")), "the lab lock is given back"
        assert not list(scratch.glob("harness-keys-*")), "the controller's keys outlive the run"
        assert not [line for line in _lab_processes(state_dir) if "worker serve" in line]
    finally:
        lab_down_leaves_nothing(env, prefix, state_dir, veths)
