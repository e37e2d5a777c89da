"""The lab lock on inventory/local: a sweep refuses a lab another run holds and touches nothing of
it, and ``harness unlock`` removes what a lost run left (a run still going here only with --force)."""

import json
import os
import socket
from pathlib import Path

from tests.integration import test_sweep
from tests.integration.conftest import HOSTS_SUBDIR, REPO
from tests.integration.test_sweep import SHORT, _rows, harness

hosts_dir = test_sweep.hosts_dir
"""Each test's hosts get directories of their own, checked afterwards for processes left running."""

FOREIGN = {
    "controller_host": "observer.lab.example",
    "controller_pid": 4242,
    "manifest": "resnet18",
    "results": "/srv/results/resnet18-20261124-030000",
    "since": "2026-11-24T03:00:00+00:00",
    "token": "5b7c9e1f3a2d4c6e8f0a1b3c5d7e9f2a",
}


def _hold(hosts: Path, host: str, owner: dict) -> Path:
    """A lock as the lab_lock role leaves it, in the host's directory of inventory/local."""
    lock = hosts / HOSTS_SUBDIR / host / "lab.lock"
    lock.mkdir(parents=True)
    (lock / "owner.json").write_text(json.dumps(owner))
    return lock


def test_a_sweep_refuses_a_lab_another_run_holds(hosts_dir, tmp_path):
    lock = _hold(hosts_dir, "cloud-local", FOREIGN)
    out = tmp_path / "results"
    done = harness(hosts_dir, "sweep", "manifests/alexnet.yml", *SHORT, "--out", str(out))
    assert done.returncode == 1, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("harness: error: sweep failed (host "), last
    assert (
        f"host cloud-local: the lab lock {lock} is held by the run of manifest resnet18 from controller "
        "observer.lab.example (pid 4242) since 2026-11-24T03:00:00+00:00, results in "
        "/srv/results/resnet18-20261124-030000; wait for that run to end, or if it is gone run "
        f"`harness unlock -i {REPO / 'inventory' / 'local'}`"
    ) in last
    assert json.loads((lock / "owner.json").read_text()) == FOREIGN
    assert not (hosts_dir / HOSTS_SUBDIR / "edge-local" / "lab.lock").exists(), "the edge's lock was kept"
    assert _rows(out / "records.csv") == 0
    assert not (hosts_dir / HOSTS_SUBDIR / "cloud-local" / "worker.pid").exists()

    unlocked = harness(hosts_dir, "unlock", "-i", "inventory/local", "--force")
    assert unlocked.returncode == 0, unlocked.stderr[-3000:]
    assert unlocked.stdout.strip() == "unlock: ok on inventory/local, 1 locks removed"
    assert not lock.exists()


def test_unlock_spares_a_run_still_going_here_unless_forced(hosts_dir):
    here = FOREIGN | {"controller_host": socket.gethostname(), "controller_pid": os.getpid()}
    locks = [_hold(hosts_dir, host, here) for host in ("edge-local", "cloud-local")]
    refused = harness(hosts_dir, "unlock", "-i", "inventory/local")
    assert refused.returncode == 1
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("harness: error: unlock failed: host "), last
    assert f"the lab lock is held by process {os.getpid()} of this controller, which still runs" in last
    assert all(lock.is_dir() for lock in locks)

    forced = harness(hosts_dir, "unlock", "-i", "inventory/local", "--force")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert forced.stdout.strip() == "unlock: ok on inventory/local, 2 locks removed"
    assert not any(lock.exists() for lock in locks)
