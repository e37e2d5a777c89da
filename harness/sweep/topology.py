"""Where a sweep's hosts are and how their link is shaped, read from the inventory before anything starts.

A worker off loopback needs keys, and so does a record stream off loopback; the controller binds
its stream on the observer host's address when the inventory has one (a lab's controller runs
there, and edge hosts cannot reach its loopback). Under ``tc`` the kernel shapes one link at a
time, so a sweep whose runs ask for several links is refused before it starts.
"""

import math
from dataclasses import dataclass
from pathlib import Path

from harness.ansible.inventory import check_groups, host_variables, inventory_groups
from harness.errors import BadInput
from harness.lab.spec import OBSERVER_GROUP
from harness.manifest import LoadedManifest
from harness.manifest.schema import LinkSpec
from harness.manifest.validate import field_line
from harness.wire.link import UNLIMITED
from harness.wire.sockets import loopback_address


@dataclass(frozen=True)
class TcLink:
    """The one link ``tc`` shapes for a sweep: its rate (payload bytes per second) and one-way delay."""

    rate: int
    delay_ms: float


@dataclass(frozen=True)
class Topology:
    cloud_host: str
    cloud_address: str
    observer_address: str | None
    tc_link: TcLink | None

    @property
    def needs_keys(self) -> bool:
        """Whether traffic leaves loopback, where the worker and the record stream refuse strangers."""
        return not loopback_address(self.cloud_address) or (
            self.observer_address is not None and not loopback_address(self.observer_address)
        )

    @property
    def observer_endpoint(self) -> str:
        return f"tcp://{self.observer_address or '127.0.0.1'}:*"


def topology(inventory: Path, loaded: LoadedManifest) -> Topology:
    """The sweep's hosts as the inventory places them; raises ``BadInput`` for what cannot run."""
    groups = inventory_groups(inventory)
    hosts = loaded.manifest.hosts
    check_groups(inventory, groups, {"edge": hosts.edge, "cloud": hosts.cloud})
    variables = host_variables(inventory)
    cloud_host = groups[hosts.cloud][0]
    observers = groups.get(OBSERVER_GROUP, [])
    observer_address = _address(observers[0], variables.get(observers[0], {})) if observers else None
    tc_hosts = [host for host in groups[hosts.edge] if variables.get(host, {}).get("harness_link_shaping") == "tc"]
    tc_link = shaped_link(loaded, inventory, tc_hosts) if tc_hosts else None
    if tc_link is not None and loaded.manifest.pipelined:
        line, field = field_line(loaded.rendered, ("link",))
        raise BadInput(
            f"{loaded.rendered.path}:{line}: field {field}.shaping: edge host {tc_hosts[0]} of inventory {inventory} "
            "shapes its link with tc, which shapes one link between the edge and one cloud host; a sweep over tiers "
            "paces every hop itself (expected shaping: emulated)"
        )
    cloud_address = host_worker_address(cloud_host, variables.get(cloud_host, {}))
    return Topology(cloud_host, cloud_address, observer_address, tc_link)


def worker_address(inventory: Path, cloud_group: str) -> str:
    """Where the first host of ``cloud_group`` runs its worker, as the inventory says."""
    cloud_host = inventory_groups(inventory)[cloud_group][0]
    return host_worker_address(cloud_host, host_variables(inventory).get(cloud_host, {}))


def shaped_link(loaded: LoadedManifest, inventory: Path, tc_hosts: list[str]) -> TcLink | None:
    """The link of every run left to tc (runs asking for ``emulated`` are paced by the edge itself);
    None when no run is."""
    links: list[LinkSpec] = []
    for run in loaded.runs:
        if run.link.shaping != "emulated" and run.link not in links:
            links.append(run.link)
    if len(links) > 1:
        listed = ", ".join(f"{link.rate} delay {link.delay}" for link in links)
        raise BadInput(
            f"manifest {loaded.rendered.path}: edge host {tc_hosts[0]} of inventory {inventory} shapes its link "
            f"with tc, which shapes one link per sweep, but the runs ask for {len(links)} ({listed}): "
            "sweep each link separately, or set link.shaping: emulated"
        )
    if not links:
        return None
    if math.isinf(links[0].rate_bytes):
        raise BadInput(
            f"manifest {loaded.rendered.path}: edge host {tc_hosts[0]} of inventory {inventory} shapes its link "
            f"with tc, which needs a rate, but the runs ask for rate {UNLIMITED}: give a rate, or set "
            "link.shaping: emulated, which leaves an unlimited link unpaced"
        )
    return TcLink(rate=round(links[0].rate_bytes), delay_ms=links[0].delay_ns / 1e6)


def _address(host: str, variables: dict) -> str:
    value = variables.get("ansible_host", host)
    return value if isinstance(value, str) else host


def host_worker_address(host: str, variables: dict) -> str:
    """Where ``host`` runs its worker: its ``harness_worker_address``, else its ``ansible_host``, else its name."""
    value = variables.get("harness_worker_address")
    return value if isinstance(value, str) else _address(host, variables)


def worker_places(inventory: Path, hosts: list[str], base_port: int) -> dict[str, tuple[str, int]]:
    """Each host's worker address and port; hosts at one address (the embedded default runs every
    "host" on this machine) take consecutive ports from ``base_port``, so their workers do not collide."""
    variables = host_variables(inventory)
    taken: dict[str, int] = {}
    places = {}
    for host in hosts:
        address = host_worker_address(host, variables.get(host, {}))
        places[host] = (address, base_port + taken.get(address, 0))
        taken[address] = taken.get(address, 0) + 1
    return places
