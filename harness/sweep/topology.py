"""Where a sweep's hosts are and how their link is shaped, read from the inventory before anything starts.

A worker off loopback needs keys, and so does a record stream off loopback; the controller binds
its stream on the observer host's address when the inventory has one (a lab's controller runs
there, and edge hosts cannot reach its loopback). Under ``tc`` the kernel shapes one link at a
time, so the runs are grouped by the link tc shapes for them, and the playbook shapes each group's
link before its runs.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.ansible.inventory import check_groups, host_variables, inventory_groups
from harness.errors import BadInput
from harness.lab.spec import OBSERVER_GROUP
from harness.manifest import LoadedManifest
from harness.manifest.matrix import Run
from harness.manifest.schema import LinkSpec
from harness.manifest.validate import field_line
from harness.wire.link import UNLIMITED
from harness.wire.sockets import loopback_address


@dataclass(frozen=True)
class TcLink:
    """A link ``tc`` shapes: its rate (payload bytes per second) and one-way delay."""

    rate: int
    delay_ms: float

    @classmethod
    def of(cls, link: LinkSpec) -> "TcLink":
        return cls(rate=round(link.rate_bytes), delay_ms=link.delay_ns / 1e6)


@dataclass(frozen=True)
class LinkGroup:
    """Runs that go over one link, in run order, and the links they ask for as written. ``tc`` is the
    link tc shapes for them; None where no tc does (the host shapes nothing, or the runs ask the
    edge to pace them)."""

    runs: tuple[str, ...]
    links: tuple[LinkSpec, ...]
    tc: TcLink | None

    @property
    def record(self) -> str:
        """The file on the edge host (and in ``hosts/<edge>/``) that says how this group's link was
        shaped: named by the rate and delay tc shapes to, as a run id names them; ``link.json`` for
        the runs no tc shapes, as before links changed within a sweep."""
        if self.tc is None:
            return "link.json"
        link = self.links[0]
        parts = [link.rate.replace("/", "p"), *([link.delay] if link.delay_ns else [])]
        return "link-" + "-".join(_UNSAFE.sub("-", part).strip("-") for part in parts) + ".json"

    def variables(self) -> dict:
        """The group as ``playbooks/phases/link.yml`` takes it; rate 0 where no tc shapes the link."""
        return {
            "record": self.record,
            "runs": list(self.runs),
            "rate": self.tc.rate if self.tc else 0,
            "delay_ms": self.tc.delay_ms if self.tc else 0.0,
            "links": [link.model_dump(mode="json") for link in self.links],
        }


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Topology:
    cloud_host: str
    cloud_address: str
    observer_address: str | None
    link_groups: tuple[LinkGroup, ...]

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
    groups_of_runs = tc_groups(loaded, inventory, tc_hosts) if tc_hosts else link_groups(loaded.runs, tc=False)
    if loaded.manifest.pipelined and any(group.tc for group in groups_of_runs):
        line, field = field_line(loaded.rendered, ("link",))
        raise BadInput(
            f"{loaded.rendered.path}:{line}: field {field}.shaping: edge host {tc_hosts[0]} of inventory {inventory} "
            "shapes its link with tc, which shapes one link between the edge and one cloud host; a sweep over tiers "
            "paces every hop itself (expected shaping: emulated)"
        )
    cloud_address = host_worker_address(cloud_host, variables.get(cloud_host, {}))
    return Topology(cloud_host, cloud_address, observer_address, tuple(groups_of_runs))


def worker_address(inventory: Path, cloud_group: str) -> str:
    """Where the first host of ``cloud_group`` runs its worker, as the inventory says."""
    cloud_host = inventory_groups(inventory)[cloud_group][0]
    return host_worker_address(cloud_host, host_variables(inventory).get(cloud_host, {}))


def link_groups(runs: Sequence[Run], tc: bool) -> list[LinkGroup]:
    """The runs by the link they go over, each group in run order. Under tc, one group per link tc
    shapes (equal rate and delay, however written), in the order of their first runs, then the runs
    that ask the edge to pace them (``shaping: emulated``): tc must leave those unshaped, and last
    they cost one removal of the qdisc, never a removal and a rebuild between two rates. Without tc,
    one group of every run."""
    shaped: dict[TcLink, list[Run]] = {}
    paced: list[Run] = []
    for run in runs:
        if tc and run.link.shaping != "emulated":
            shaped.setdefault(TcLink.of(run.link), []).append(run)
        else:
            paced.append(run)
    groups = [_group(members, link) for link, members in shaped.items()]
    return groups + ([_group(paced, None)] if paced else [])


def _group(runs: list[Run], tc: TcLink | None) -> LinkGroup:
    links = tuple(dict.fromkeys(run.link for run in runs))
    return LinkGroup(tuple(run.id for run in runs), links, tc)


def tc_groups(loaded: LoadedManifest, inventory: Path, tc_hosts: list[str]) -> list[LinkGroup]:
    """``link_groups`` for edge hosts that shape by tc, which needs a rate for every run it shapes."""
    if any(run.link.shaping != "emulated" and math.isinf(run.link.rate_bytes) for run in loaded.runs):
        raise BadInput(
            f"manifest {loaded.rendered.path}: edge host {tc_hosts[0]} of inventory {inventory} shapes its link "
            f"with tc, which needs a rate, but the runs ask for rate {UNLIMITED}: give a rate, or set "
            "link.shaping: emulated, which leaves an unlimited link unpaced"
        )
    return link_groups(loaded.runs, tc=True)


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
