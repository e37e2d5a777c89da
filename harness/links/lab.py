"""Measuring the link matrix of an inventory's hosts: a worker started on each (``playbooks/links.yml``),
the pairs probed from here (``measure``), every worker stopped again whatever happened.

Hosts that share an address (the embedded default runs every "host" on this machine) get
consecutive ports from the base port, so their workers do not collide. Off loopback the run makes
fresh keys, as a sweep does, and every host gets the worker's pair and the edge's, since each
worker both serves probes and probes the others as a client. The lab lock is taken on every host
for the length of the run, so no sweep shapes or reuses a host while it is probed.
"""

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.ansible.inventory import inventory_groups
from harness.ansible.runner import run_playbook
from harness.errors import BadInput, ExperimentFailed
from harness.lab.spec import OBSERVER_GROUP
from harness.links.measure import Measured, ProbeSettings, measure_links
from harness.sweep.keys import CLOUD_FILES, EDGE, sweep_keys
from harness.sweep.lock import lock_variables
from harness.sweep.topology import worker_places
from harness.wire.keys import client_keys
from harness.wire.sockets import loopback_address


def link_hosts(inventory: Path, groups: tuple[str, ...]) -> list[str]:
    """The hosts of ``groups``, each once, in order; when none is named, every host of the inventory
    but the observer's (the controller runs there, and no model does)."""
    found = inventory_groups(inventory)
    wanted = groups or ("all",)
    missing = [group for group in wanted if not found.get(group)]
    if missing:
        listed = ", ".join(sorted(name for name, hosts in found.items() if hosts and name != "ungrouped"))
        raise BadInput(f"inventory {inventory}: no hosts in group {', '.join(missing)}; it has {listed}")
    left_out = set() if groups else set(found.get(OBSERVER_GROUP, []))
    hosts = [host for host in dict.fromkeys(host for group in wanted for host in found[group]) if host not in left_out]
    if len(hosts) < 2:
        raise BadInput(f"inventory {inventory}: groups {', '.join(wanted)} have {len(hosts)} host; expected at least 2")
    return hosts


def measure_inventory(
    inventory: Path,
    groups: tuple[str, ...],
    settings: ProbeSettings,
    base_port: int,
    progress: Callable[[str], None] = lambda _: None,
) -> Measured:
    """Start the workers, measure every ordered pair of ``groups``' hosts, stop the workers."""
    hosts = link_hosts(inventory, groups)
    places = worker_places(inventory, hosts, base_port)
    endpoints = {host: f"tcp://{address}:{port}" for host, (address, port) in places.items()}
    off_loopback = any(not loopback_address(address) for address, _ in places.values())
    keys = sweep_keys(Path(tempfile.mkdtemp(prefix="harness-keys-"))) if off_loopback else None
    variables = {
        "harness_link_hosts": ":".join(hosts),
        "harness_link_endpoints": endpoints,
        "harness_link_ports": {host: port for host, (_, port) in places.items()},
        **lock_variables("harness links measure", None),
    }
    if keys is not None:
        variables |= {"harness_keys_source": str(keys), "harness_keys_cloud_files": list(CLOUD_FILES)}
    try:
        progress(f"starting workers on {', '.join(hosts)}")
        _playbook(inventory, variables | {"harness_links_state": "started"}, "starting the link workers")
        return measure_links(endpoints, client_keys(keys, EDGE) if keys else None, settings, progress)
    finally:
        try:
            progress("stopping the workers")
            _playbook(inventory, variables | {"harness_links_state": "stopped"}, "stopping the link workers")
        finally:
            if keys is not None:
                shutil.rmtree(keys, ignore_errors=True)


def _playbook(inventory: Path, variables: dict, doing: str) -> None:
    result = run_playbook("links", inventory, variables)
    if not result.ok:
        reason = str(result.failures[0]) if result.failures else f"status {result.status}, rc {result.rc}"
        raise ExperimentFailed(f"{doing} failed: {reason}")
