"""Reading an inventory's groups before anything runs, so a missing group fails in a second."""

import json
import tempfile
from pathlib import Path

import ansible_runner

from harness.ansible.project import ansible_environment
from harness.errors import BadInput
from harness.lab import check_lab_up, lab_state_dir


def inventory_groups(inventory: Path) -> dict[str, list[str]]:
    """Each group of ``inventory`` (children resolved) with its hosts.

    Every command that reaches hosts reads their groups here first, so this is where an inventory of
    the virtual lab is refused while the lab is down: its private addresses would otherwise be
    routed out of the machine by the default route.
    """
    output = _listing(inventory)
    groups: dict[str, list[str]] = {}

    def hosts_of(group: str) -> list[str]:
        if group not in groups:
            entry = output.get(group, {})
            hosts = list(entry.get("hosts", []))
            for child in entry.get("children", []):
                hosts += [host for host in hosts_of(child) if host not in hosts]
            groups[group] = hosts
        return groups[group]

    for group in output:
        if group != "_meta":
            hosts_of(group)
    return groups


def host_variables(inventory: Path) -> dict[str, dict]:
    """Each host's variables as the inventory gives them (not templated), by host name."""
    return _listing(inventory).get("_meta", {}).get("hostvars", {})


def _listing(inventory: Path) -> dict:
    """``ansible-inventory --list`` of ``inventory``, refused for a lab that is down (see above)."""
    state_dir = lab_state_dir(inventory)
    if state_dir is not None:
        check_lab_up(state_dir)
    if not inventory.exists():
        raise BadInput(f"inventory {inventory} does not exist")
    with tempfile.TemporaryDirectory(prefix="harness-inventory-") as scratch:
        output, error = ansible_runner.get_inventory(
            action="list",
            inventories=[str(inventory.resolve())],
            response_format="json",
            quiet=True,
            envvars=ansible_environment(Path(scratch)),
        )
    if not isinstance(output, dict):
        first = (error or str(output) or "no output").strip().splitlines()
        raise BadInput(f"inventory {inventory} cannot be read: {first[-1] if first else 'no output'}")
    return output


def check_groups(inventory: Path, groups: dict[str, list[str]], wanted: dict[str, str]) -> None:
    """Each role's group (``{"edge": "rpi", "cloud": "gpu"}``) must exist with hosts; cloud has one."""
    for role, group in wanted.items():
        if not groups.get(group):
            known = ", ".join(sorted(name for name, hosts in groups.items() if hosts and name != "all"))
            raise BadInput(f"inventory {inventory} has no hosts in group '{group}' (hosts.{role}); it has: {known}")
    cloud = wanted.get("cloud")
    if cloud and len(groups[cloud]) != 1:
        raise BadInput(
            f"inventory {inventory}: group '{cloud}' (hosts.cloud) must hold exactly one host, "
            f"it holds {len(groups[cloud])}: {', '.join(groups[cloud])}"
        )


def describe(groups: dict[str, list[str]]) -> str:
    return json.dumps({name: hosts for name, hosts in groups.items() if name != "all"})
