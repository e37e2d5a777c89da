"""The power sources a manifest names, looked for on their hosts before a sweep starts anything.

A worker or edge given a source its host lacks refuses to start; the sweep would learn it only when
that worker never answered, minutes of retries later, with the manifest's line nowhere in sight.
Where the manifest names a sensor (``rapl``, ``nvml``, ``jetson``), the sweep first asks every host
what it has, through the doctor's playbook (seconds, and it changes nothing), and stops at the
manifest's line. ``auto``, ``none`` and a user's meter need no look: ``auto`` takes what a host has,
and a meter is the host's own code, imported where it runs.
"""

from pathlib import Path

from harness.ansible.doctor import examine, found_sources, missing_energy, names_hardware, role_hosts
from harness.ansible.inventory import inventory_groups
from harness.errors import BadInput
from harness.manifest import LoadedManifest
from harness.manifest.validate import field_line


def check_power_sources(inventory: Path, loaded: LoadedManifest) -> None:
    """Raise ``BadInput`` at the manifest's ``energy`` line when a host of that role lacks the sensor named."""
    energy = loaded.manifest.energy
    if not (names_hardware(energy.edge) or names_hardware(energy.cloud)):
        return
    report = examine(inventory, loaded)
    edge, cloud = role_hosts(report.hosts, inventory_groups(inventory), loaded.manifest)
    for role, hosts, source in (("edge", edge, energy.edge), ("cloud", cloud, energy.cloud)):
        for host in hosts:
            if missing_energy(host, role, source):
                line, field = field_line(loaded.rendered, ("energy", role))
                raise BadInput(
                    f"{loaded.rendered.path}:{line}: field {field}: {role} host {host.host} has no {source} power "
                    f"source (the harness there found {found_sources(host)}); expected one it has, auto, none, "
                    "or a meter as package.module:function"
                )
