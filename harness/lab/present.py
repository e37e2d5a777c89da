"""The lab's status as a table, and the lines that tell an operator what to do next."""

from pathlib import Path

from rich.table import Table

from harness.console import make_table
from harness.lab import links
from harness.lab.state import PairState
from harness.lab.status import LabStatus
from harness.wire.link import rate_label


def status_table(current: LabStatus) -> Table:
    verdict = "up" if current.up else ("not up (partly present)" if current.recorded else "not up")
    table = make_table(
        f"virtual lab ({current.state_dir}): {verdict}",
        ["host", "group", "namespace", "present", "address", "sshd pid>", "sshd", "cpu quota>"],
        caption=f"bridge namespace {current.bridge_namespace}" if current.bridge_namespace else None,
    )
    for host in current.hosts:
        table.add_row(
            host.name,
            host.group,
            host.namespace,
            "yes" if host.namespace_present else "no",
            host.address,
            str(host.sshd_pid) if host.sshd_pid else "-",
            "alive" if host.sshd_alive else "not running",
            f"{host.cpu_quota:g} core" if host.cpu_quota is not None else "-",
        )
    return table


def links_table(pairs: tuple[PairState, ...] | list[PairState], title: str = "links between the lab's hosts") -> Table:
    """Each ordered pair's rate as asked (TCP payload) and what tc was given for it on the bridge."""
    table = make_table(
        title,
        ["from", "to", "rate", "tc rate B/s>", "burst B>", "link"],
        caption="rate: TCP payload; tc gets rate x 1514/1448 (whole frames) on the receiver's bridge port",
    )
    for pair in pairs:
        table.add_row(
            pair.src,
            pair.dst,
            rate_label(pair.rate),
            str(links.tc_rate(pair.rate)) if pair.shaped else "-",
            str(links.burst(pair.rate)) if pair.shaped else "-",
            "cut" if pair.cut else "up",
        )
    return table


def next_steps(current: LabStatus, inventory: Path) -> list[str]:
    shown = inventory.relative_to(Path.cwd()) if inventory.is_relative_to(Path.cwd()) else inventory
    return [
        f"lab up: {len(current.hosts)} hosts in inventory {shown}; the root namespace has no route into the lab,",
        f"so run Ansible and sweeps inside the observer: ip netns exec {current.observer_namespace} "
        f".venv/bin/harness sweep MANIFEST -i {shown}",
    ]
