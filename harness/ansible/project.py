"""Where the project's Ansible content lives, and the environment every Ansible process needs.

The harness runs from a clone (its playbooks and roles are not Python package data), with the
interpreter of its own environment: Ansible's executables are found beside it, and inventories that
say ``ansible_playbook_python`` reuse it on the hosts.
"""

import os
import sys
from pathlib import Path

from harness.errors import HarnessError

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
ROLES = ROOT / "roles"
CONFIG = ROOT / "ansible.cfg"


def playbook(name: str) -> Path:
    path = PLAYBOOKS / f"{name}.yml"
    if not path.is_file():
        raise HarnessError(f"playbook {path} not found: run the harness from a clone of the project")
    return path


def ansible_environment(control_dir: Path) -> dict[str, str]:
    """Variables for ansible-runner's child processes; a per-run SSH control directory, since a
    shared one leaks connections across labs and network namespaces.

    ansible-runner looks its executables up on this process's own PATH, so the environment's bin
    directory is put there too (an unactivated venv otherwise gives "command not found").
    """
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    return {
        "ANSIBLE_CONFIG": str(CONFIG),
        "ANSIBLE_ROLES_PATH": str(ROLES),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": os.environ["PATH"],
    }
