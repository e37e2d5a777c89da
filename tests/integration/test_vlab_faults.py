"""Faults of a sweep over the virtual lab: the cloud worker killed, then the cloud host's link cut
mid-sweep, as a pulled cable. (Ctrl-C is tested on inventory/local, in test_sweep; the lab relay's
part in it, passing SIGINT on once, in tests/unit/test_relay.py.)

The killed worker must be restarted and the sweep go on over SSH and CurveZMQ. After the cut the
sweep must stop in bounded time, name the host it lost and say what to do, keep every record
made before the cut, tear down the hosts it still reaches, and finish with ``--resume`` once the
link is back. Needs what ``test_vlab_sweep`` needs (root, ``ip netns``, sshd, tc); only this
test's own lab is touched.
"""

import io
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.lab import network, system
from harness.lab.state import LabState
from tests.integration import test_vlab_sweep
from tests.integration.test_sweep import FAULT_SWEEP, _complete, _start_sweep, _wait_for_rows, free_port
from tests.integration.test_vlab_sweep import _harness, lab_down_leaves_nothing

pytestmark = pytest.mark.xdist_group("lab")
vlab = test_vlab_sweep.vlab
"""The lab of test_vlab_sweep (rpi1 in rpi, gathered under edge; gpu1 in gpu, under cloud)."""

EDGE, CLOUD = "rpi1", "gpu1"
RETRY = {"attempts": 1, "timeout_s": 5, "wait_s": 20}
STOP_BOUND_S = 120
"""From the cut to the sweep's exit: the edge gives the worker timeout_s, then wait_s; Ansible gives
the lost host at most 30 s (ansible.cfg); collect and teardown of the edge take the rest."""
RESUME_BOUND_S = 600
"""A hang guard for the resumed sweep: alone on 2 cores it takes 160 s, most of it Ansible (recover,
then provision two hosts), the 84 inferences left 25 s; CI runs another test beside it, and once
took over 300 s."""


def _link(state_dir: Path, namespace: str) -> dict:
    """The veth pair the lab made for the host in ``namespace``: its end there, and the bridge's port."""
    return next(link for link in LabState.load(state_dir).items("links") if link["namespace"] == namespace)


def _set_port(link: dict, state: str) -> None:
    """The bridge's end of the host's cable, as a switch port taken down or brought back."""
    subprocess.run(["ip", "-n", link["bridge"], "link", "set", link["port"], state], check=True)


def _complete_lines(path: Path) -> list[str]:
    """The CSV's header and rows as written so far; a row being written has no newline yet."""
    return [line for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]


def _serving_worker(namespace: str) -> int:
    """The pid of the worker process (not its supervisor) running in ``namespace``."""
    for pid in network.pids(namespace):
        line = system.command_line(pid)
        if "harness.cli worker serve" in line and "--supervise" not in line:
            return pid
    raise AssertionError(f"no worker runs in {namespace}")


def _harness_processes(namespace: str) -> list[str]:
    """Workers, supervisors and plans running in ``namespace`` (its sshd is the lab's own)."""
    lines = [system.command_line(pid) for pid in network.pids(namespace)]
    return [line for line in lines if "harness.cli worker" in line]


def _qdiscs(namespace: str) -> str:
    done = subprocess.run(["tc", "-n", namespace, "qdisc", "show"], capture_output=True, text=True, check=True)
    return done.stdout


def test_cloud_host_unreachable_mid_sweep_tears_down_the_edge_and_resumes(vlab, tmp_path):
    prefix, _, state_dir, inventory_dir, scratch, env, veths = vlab
    out = tmp_path / "results"
    retry = "retry={" + ", ".join(f"{key}: {value}" for key, value in RETRY.items()) + "}"
    manifest = [*FAULT_SWEEP, "--set", retry, "--set", f"port={free_port()}", "-i", str(inventory_dir)]
    edge, cloud = prefix + EDGE, prefix + CLOUD
    link = _link(state_dir, cloud)

    sweep = _start_sweep(scratch, *manifest, "--out", str(out))
    try:
        _wait_for_rows(out / "records.csv", 3)
        worker = _serving_worker(cloud)
        os.kill(worker, signal.SIGKILL)
        _wait_for_rows(out / "records.csv", len(_complete_lines(out / "records.csv")) + 2)
        assert _serving_worker(cloud) != worker, "the killed worker was not started again"
        _set_port(link, "down")
        cut_ns = time.time_ns()
        rows_at_cut = _complete_lines(out / "records.csv")
        _, stderr = sweep.communicate(timeout=STOP_BOUND_S)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
        _set_port(link, "up")
    stopped_s = (time.time_ns() - cut_ns) / 1e9
    assert sweep.returncode == 1, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    address = yaml.safe_load((inventory_dir / "hosts.yml").read_text())["all"]["children"]["gpu"]["hosts"][CLOUD]
    folder, inventory = re.escape(str(out)), re.escape(str(inventory_dir))
    found = re.fullmatch(
        rf"harness: error: host {CLOUD} became unreachable \((?P<reason>.+)\): the other hosts were torn down; "
        rf"(?P<kept>\d+) records kept in {folder}; once {CLOUD} can be reached again, continue with "
        rf"`harness sweep \.\.\. --resume {folder}` \(it first tears down what was left running there\), "
        rf"or only tear down with `harness teardown -i {inventory} --manifest manifests/alexnet\.yml`",
        last,
    )
    assert found and address["ansible_host"] in found["reason"], last

    before = pd.read_parquet(out / "records.parquet")
    kept = int(found["kept"])
    assert kept == len(before) >= len(rows_at_cut) - 1 >= 3
    at_cut = pd.read_csv(io.StringIO("".join(rows_at_cut)))
    joined = at_cut[["run", "cut", "repeat", "e2e_ns"]].merge(before, on=["run", "cut", "repeat"], how="left")
    assert (joined["e2e_ns_x"] == joined["e2e_ns_y"]).all(), "a row recorded before the cut was lost or changed"
    failures = pd.read_csv(out / "failures.csv")
    killed = failures["error"].str.contains(r"dropped \(the worker stopped or died\)")
    silent = failures["error"].str.contains(f"did not answer within {RETRY['timeout_s']} s")
    assert (killed | silent).all() and killed.any() and silent.any(), failures["error"]
    assert (failures.loc[killed, "at_ns"] < cut_ns).all() and (failures.loc[silent, "at_ns"] > cut_ns).all()
    detected_s = (failures.loc[silent, "at_ns"].min() - cut_ns) / 1e9
    assert RETRY["timeout_s"] - 1 <= detected_s <= RETRY["timeout_s"] + 5, detected_s
    print(f"cut to detection {detected_s:.1f} s, to exit {stopped_s:.1f} s; {kept} records kept; {found['reason']}")

    assert _harness_processes(edge) == [], "the edge's plan outlived the sweep"
    assert "htb" not in _qdiscs(edge) and "ingress" not in _qdiscs(edge), _qdiscs(edge)
    assert network.devices(edge) == ["lo", network.HOST_DEVICE], "the edge's ifb outlived the sweep"
    assert not (state_dir / "hosts" / EDGE / "root" / "keys").exists()
    assert any("worker serve" in line for line in _harness_processes(cloud)), (
        "nothing reached the lost host, so its worker still runs"
    )

    resumed = _harness(env, "sweep", *manifest, "--resume", str(out), timeout=RESUME_BOUND_S)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr[-3000:]
    after = pd.read_parquet(out / "records.parquet")
    _complete(after)
    assert before.merge(after, how="left", indicator=True)["_merge"].eq("both").all(), "a row recorded before changed"
    assert _harness_processes(edge) == [] and _harness_processes(cloud) == []
    assert not list((state_dir / "hosts").glob("*/root/keys"))

    lab_down_leaves_nothing(env, prefix, state_dir, veths)
