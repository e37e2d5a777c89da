"""``harness doctor`` on inventory/local, as a user runs it: a subprocess, nothing changed anywhere.

TMPDIR points into the test's own directory, as in test_sweep.py, so that the hosts' directories
inventory/local derives from it are never a user's.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import HOSTS_SUBDIR, REPO

MANIFESTS = REPO / "tests" / "fixtures" / "manifests"


@pytest.fixture
def hosts_dir(tmp_path):
    """Where inventory/local would put each host's directory; the doctor must not make one."""
    path = tmp_path / "hosts"
    path.mkdir()
    yield path
    assert not (path / HOSTS_SUBDIR).exists(), "the doctor made a host directory"


def doctor(hosts_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "doctor", "-i", "inventory/local", *args],
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(hosts_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_doctor_table_names_every_host_with_its_arch(hosts_dir):
    done = doctor(hosts_dir)
    assert done.returncode == 0, done.stderr
    arch = os.uname().machine
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if line.count("│") > 3}
    for host in ("edge-local", "cloud-local"):
        assert host in rows, done.stdout
        assert f"│ {arch} " in rows[host]
    assert done.stdout.rstrip().endswith("nothing missing on inventory/local")


def test_doctor_json(hosts_dir):
    done = doctor(hosts_dir, "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    hosts = {host["host"]: host for host in record["hosts"]}
    assert set(hosts) == {"edge-local", "cloud-local"}
    for host in hosts.values():
        assert host["reachable"] is True and host["problem"] == ""
        assert host["arch"] == os.uname().machine
        assert host["harness"] and host["torch"] and host["cores"] >= 1
        assert set(host["qdiscs"]) == {"tbf", "htb", "netem", "ingress", "ifb"}
    assert record["missing"] == []


def test_manifest_groups_the_inventory_lacks_are_bad_input(hosts_dir):
    done = doctor(hosts_dir, "--manifest", str(MANIFESTS / "doctor-groups.yml"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr == (
        "harness: error: inventory inventory/local has no hosts in group 'rpi' (hosts.edge); it has: cloud, edge\n"
    )


def test_a_delay_is_nothing_missing_with_emulated_shaping(hosts_dir):
    done = doctor(hosts_dir, "--manifest", str(MANIFESTS / "doctor-delay.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith(f"nothing missing on inventory/local for {MANIFESTS / 'doctor-delay.yml'}")
