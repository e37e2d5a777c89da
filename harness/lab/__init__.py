"""A virtual lab on one Linux machine, to test the SSH and ``tc`` path without real devices.

Each lab host is a network namespace with its own sshd and address, joined by veth links to a
bridge in a namespace of its own; the controller runs in the observer host's namespace. The root
namespace gets no address and no route into the lab, so lab traffic never leaves the machine.
"""

from pathlib import Path

from harness.ansible.project import ROOT
from harness.lab.inventory import state_dir_of
from harness.lab.lifecycle import down, up
from harness.lab.spec import LabSpec, load_spec
from harness.lab.status import LabStatus, check_lab_up, inside_observer, observer_command, status
from harness.lab.system import NEEDS_ROOT, LabError

DEFAULT_STATE_DIR = Path("/var/lib/split-harness-lab")
DEFAULT_INVENTORY_DIR = ROOT / "inventory" / "vlab"


def lab_state_dir(inventory: Path) -> Path | None:
    """The state directory of the lab an inventory points at, or None for any other inventory.

    An inventory a lab wrote says so itself; the default ``inventory/vlab`` belongs to the default
    lab even after ``lab down`` removed its files, so a sweep aimed at it still fails locally.
    """
    recorded = state_dir_of(inventory)
    if recorded is not None:
        return recorded
    if inventory.absolute().resolve() == DEFAULT_INVENTORY_DIR.resolve():
        return DEFAULT_STATE_DIR
    return None


__all__ = [
    "DEFAULT_INVENTORY_DIR",
    "DEFAULT_STATE_DIR",
    "NEEDS_ROOT",
    "LabError",
    "LabSpec",
    "LabStatus",
    "check_lab_up",
    "down",
    "inside_observer",
    "lab_state_dir",
    "load_spec",
    "observer_command",
    "status",
    "up",
]
