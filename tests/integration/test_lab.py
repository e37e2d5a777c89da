"""The virtual lab for real: namespaces, a bridge, an sshd per host, a CPU quota, Ansible over SSH.

Needs root, ``ip netns`` and OpenSSH's server; skipped elsewhere. Every lab here uses a namespace
prefix holding this process's pid, so a lab someone already runs on the machine is never touched,
and all traffic stays between the lab's own namespaces.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import harness.lab as lab
from harness.errors import BadInput
from harness.lab import cpu, network, sshd, system
from harness.lab.spec import LabSpec
from harness.lab.state import LabState
from harness.lab.system import LabError
from tests.integration.conftest import REPO, skip_unless_lab_possible

SUBNET = "10.231.0.0/24"


def _skip_unless_possible() -> None:
    skip_unless_lab_possible(
        (("ip", "iproute2"), ("sshd", "openssh-server"), ("ssh", "openssh-client")),
        "network namespaces, veth links and sshd",
    )


def _spec(prefix: str, subnet: str = SUBNET) -> LabSpec:
    quota = 0.5 if cpu.CPU_ROOT.joinpath("cpu.cfs_quota_us").exists() else None
    return LabSpec.model_validate(
        {
            "prefix": prefix,
            "subnet": subnet,
            "hosts": [
                {"name": "rpi1", "group": "rpi", "cpu_quota": quota},
                {"name": "gpu1", "group": "gpu"},
                {"name": "observer1", "group": "observer"},
            ],
        }
    )


def _root_veths() -> set[str]:
    output = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True, text=True, check=True)
    return {line.split(":")[1].strip() for line in output.stdout.splitlines()}


def _lab_namespaces(prefix: str) -> list[str]:
    return sorted(path.name for path in network.NETNS_DIR.glob(f"{prefix}*"))


def _lab_processes(state_dir: Path) -> list[str]:
    """Live processes whose command line names the lab's state directory (its sshds, its SSH masters)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and system.alive(int(entry.name)):
            line = system.command_line(int(entry.name))
            if str(state_dir) in line:
                found.append(f"{entry.name} {line}")
    return found


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """One lab for the module's tests, which run in any order: none of them takes it down, this does."""
    _skip_unless_possible()
    base = tmp_path_factory.mktemp("lab")
    prefix = f"t{os.getpid()}-"
    spec = _spec(prefix)
    state_dir, inventory_dir = base / "state", base / "inventory"
    veths = _root_veths()
    lab.up(spec, state_dir, inventory_dir)
    try:
        yield spec, state_dir, inventory_dir, veths
    finally:
        lab.down(state_dir)


def _in_observer(state_dir: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        lab.observer_command(state_dir, list(argv)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
        env=env,
    )


def _ssh(state_dir: Path, address: str, command: str) -> subprocess.CompletedProcess:
    return _in_observer(
        state_dir,
        "ssh",
        "-i",
        str(state_dir / "id_ed25519"),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=5",
        f"root@{address}",
        command,
    )


def test_the_lab_is_up_with_every_host(running):
    spec, state_dir, _, _ = running
    current = lab.check_lab_up(state_dir)
    assert [(host.name, host.namespace, host.address) for host in current.hosts] == [
        (host.name, spec.prefix + host.name, spec.address(host)) for host in spec.hosts
    ]
    assert all(host.namespace_present and host.sshd_alive for host in current.hosts)
    assert current.hosts[0].cpu_quota == spec.hosts[0].cpu_quota
    assert current.observer_namespace == f"{spec.prefix}observer1"


def test_ssh_from_the_observer_reaches_every_host(running):
    spec, state_dir, _, _ = running
    for host in spec.hosts:
        result = _ssh(state_dir, spec.address(host), "true")
        assert result.returncode == 0, f"{host.name}: {result.stderr}"


def test_the_slow_host_runs_its_sessions_under_the_quota(running):
    spec, state_dir, _, _ = running
    if spec.hosts[0].cpu_quota is None:
        pytest.skip("no cgroup v1 cpu controller here")
    result = _ssh(state_dir, spec.address(spec.hosts[0]), "cat /proc/self/cgroup")
    assert result.returncode == 0, result.stderr
    assert f"cpu:/{spec.prefix}rpi1" in result.stdout
    group = cpu.CPU_ROOT / f"{spec.prefix}rpi1"
    assert (group / "cpu.cfs_period_us").read_text().strip() == "2000"
    assert (group / "cpu.cfs_quota_us").read_text().strip() == "1000"


def test_ansible_pings_every_host_from_the_observer(running):
    spec, state_dir, inventory_dir, _ = running
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_DEPRECATION_WARNINGS": "false",
    }
    result = _in_observer(state_dir, "ansible", "-i", str(inventory_dir), "all", "-m", "ansible.builtin.ping", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    for host in spec.hosts:
        assert f"{host.name} | SUCCESS" in result.stdout, result.stdout


def test_the_root_namespace_has_no_way_into_the_lab(running):
    spec, _, _, veths = running
    addresses = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    assert not any(spec.address(host) in addresses for host in spec.hosts)
    assert _root_veths() == veths
    route = subprocess.run(
        ["ip", "-o", "route", "get", spec.address(spec.hosts[0])], capture_output=True, text=True, check=False
    )
    default = subprocess.run(["ip", "-o", "route", "show", "default"], capture_output=True, text=True, check=True)
    if route.returncode == 0:
        device = route.stdout.split(" dev ")[1].split()[0]
        assert f" dev {device} " in default.stdout + " ", f"{route.stdout} does not use the default route"


def test_down_removes_everything_the_lab_made(short_tmp):
    """A lab of its own (another prefix and subnet), so the module's lab stays up for the other tests."""
    _skip_unless_possible()
    spec = _spec(f"d{os.getpid()}-", "10.234.0.0/24")
    state_dir, inventory_dir = short_tmp / "state", short_tmp / "inventory"
    veths = _root_veths()
    lab.up(spec, state_dir, inventory_dir)
    try:
        lab.check_lab_up(state_dir)
        groups = [Path(item["path"]) for item in _recorded(state_dir, "cgroups")]
        pids = [item["pid"] for item in _recorded(state_dir, "processes")]
        assert pids and lab.down(state_dir)
        assert _lab_namespaces(spec.prefix) == []
        assert _root_veths() == veths
        assert not any(system.alive(pid) for pid in pids)
        assert _lab_processes(state_dir) == []
        assert not any(group.exists() for group in groups)
        assert not state_dir.exists()
        assert not inventory_dir.exists()
        assert not lab.status(state_dir).recorded
        with pytest.raises(BadInput, match="the virtual lab is not up"):
            lab.check_lab_up(state_dir)
    finally:
        lab.down(state_dir)


def _recorded(state_dir: Path, kind: str) -> list[dict]:
    state = LabState.load(state_dir)
    return state.items(kind) if state else []


def test_a_half_failed_up_leaves_nothing_behind(short_tmp, monkeypatch):
    _skip_unless_possible()
    prefix = f"f{os.getpid()}-"
    spec = _spec(prefix)
    started: list[int] = []
    real_start = sshd.start

    def start_once(namespace: str, host_dir: Path) -> int:
        if started:
            raise LabError(f"injected failure starting sshd in {namespace}")
        started.append(real_start(namespace, host_dir))
        return started[-1]

    monkeypatch.setattr(sshd, "start", start_once)
    state_dir, inventory_dir = short_tmp / "state", short_tmp / "inventory"
    veths = _root_veths()
    with pytest.raises(LabError) as error:
        lab.up(spec, state_dir, inventory_dir)
    assert str(error.value) == (
        f"lab up failed, and everything it made was removed: injected failure starting sshd in {prefix}gpu1"
    )
    assert len(started) == 1
    assert not system.alive(started[0])
    assert _lab_namespaces(prefix) == []
    assert _root_veths() == veths
    assert not (cpu.CPU_ROOT / f"{prefix}rpi1").exists()
    assert _lab_processes(state_dir) == []
    assert list(short_tmp.iterdir()) == []


def test_up_refuses_names_that_are_taken(tmp_path):
    _skip_unless_possible()
    prefix = f"g{os.getpid()}-"
    subprocess.run(["ip", "netns", "add", f"{prefix}gpu1"], check=True)
    try:
        with pytest.raises(BadInput, match=f"network namespace {prefix}gpu1 already exists"):
            lab.up(_spec(prefix), tmp_path / "state", tmp_path / "inventory")
        assert _lab_namespaces(prefix) == [f"{prefix}gpu1"]
        assert list(tmp_path.iterdir()) == []
    finally:
        subprocess.run(["ip", "netns", "del", f"{prefix}gpu1"], check=True)
