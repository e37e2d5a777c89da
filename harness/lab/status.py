"""Whether a lab is up, judged from what is running now rather than from what was once recorded.

Commands aimed at the lab's inventory call ``check_lab_up`` before sending any packet: once the
namespaces are gone, the lab's private addresses would be routed out of the machine by its default
route. Reading the state needs no root, so anyone may ask.
"""

from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInput
from harness.lab import cpu, network, sshd
from harness.lab.state import LabState, PairState

NOT_UP = "the virtual lab is not up: run `harness lab up` (as root)"


@dataclass(frozen=True)
class HostStatus:
    name: str
    group: str
    namespace: str
    namespace_present: bool
    address: str
    sshd_pid: int | None
    sshd_alive: bool
    cpu_quota: float | None


@dataclass(frozen=True)
class LabStatus:
    state_dir: Path
    recorded: bool
    up: bool
    hosts: tuple[HostStatus, ...] = ()
    bridge_namespace: str | None = None
    observer_namespace: str | None = None
    pairs: tuple[PairState, ...] = ()
    """The ordered pairs as the bridge shapes them; empty where none was ever shaped or cut."""


def status(state_dir: Path) -> LabStatus:
    state = LabState.load(state_dir.absolute())
    if state is None:
        return LabStatus(state_dir, recorded=False, up=False)
    spec = state.spec()
    processes = {item["host"]: item for item in state.items("processes")}
    # `ip netns exec` mounts a fresh /sys without the cgroup hierarchy: inside the observer a quota
    # cannot be seen, so the record is taken for it there.
    visible = cpu.CPU_ROOT.is_dir()
    quotas = {
        item["host"]: item["cpu_quota"] for item in state.items("cgroups") if not visible or Path(item["path"]).is_dir()
    }
    hosts = []
    for host in spec.hosts:
        process = processes.get(host.name)
        name = spec.namespace(host.name)
        hosts.append(
            HostStatus(
                name=host.name,
                group=host.group,
                namespace=name,
                namespace_present=network.exists(name),
                address=spec.address(host),
                sshd_pid=process["pid"] if process else None,
                sshd_alive=bool(process) and sshd.serves(process["pid"], Path(process["config"])),
                cpu_quota=quotas.get(host.name),
            )
        )
    bridge = spec.bridge_namespace
    up = (
        state.up
        and network.exists(bridge)
        and all(host.namespace_present and host.sshd_alive for host in hosts)
        and all(quotas.get(host.name) == host.cpu_quota for host in spec.hosts)
    )
    return LabStatus(state_dir, True, up, tuple(hosts), bridge, spec.namespace(spec.observer.name), state.pairs())


def check_lab_up(state_dir: Path) -> LabStatus:
    """The lab's status; raises ``BadInput`` unless every host is up."""
    current = status(state_dir)
    if not current.up:
        raise BadInput(NOT_UP)
    return current


def observer_command(state_dir: Path, argv: list[str]) -> list[str]:
    """``argv`` run inside the observer's namespace, where the controller reaches every lab host."""
    current = check_lab_up(state_dir)
    return ["ip", "netns", "exec", str(current.observer_namespace), *argv]


def inside_observer(state_dir: Path) -> bool:
    """Whether this process already runs in the lab's observer namespace."""
    current = status(state_dir)
    return current.observer_namespace is not None and network.same_namespace(current.observer_namespace)
