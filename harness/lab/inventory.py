"""The Ansible inventory of a lab: each namespace host reached over SSH at its lab address.

Every variable a play needs is written per host, so the file alone says how each host is reached.
The filesystem is shared by all namespaces, so the controller's own interpreter (this venv) is
every host's interpreter; each host still gets its own ``harness_root``, as a separate machine
would. SSH connections are multiplexed through a control path inside the lab's state directory:
the default one in ``~/.ansible/cp`` is shared by every namespace and would leak connections.

A lab whose spec shapes its links (``links:``, on the bridge) tells sweeps to shape nothing more
(``harness_link_shaping: none``): tc on the hosts would shape the same traffic twice, and a sweep
over tiers, which tc cannot shape hop by hop, runs over the lab's own links.
"""

import os
import sys
from pathlib import Path
from typing import Any

import yaml

from harness.errors import BadInput
from harness.lab.spec import LabSpec

HOSTS_FILE = "hosts.yml"
CONTROL_DIR = "cp"
_SOCKET_PATH_MAX = 107
"""A Unix socket's path holds 108 bytes, the last one NUL."""
_SSH_SOCKET_SUFFIX = 17
"""ssh creates a control socket as the path plus '.' and 16 random characters, then renames it."""
GROUP_VARS_FILE = Path("group_vars") / "all.yml"
STATE_DIR_VARIABLE = "harness_lab_state_dir"


def files(inventory_dir: Path) -> list[Path]:
    return [inventory_dir / HOSTS_FILE, inventory_dir / GROUP_VARS_FILE]


def check_free(inventory_dir: Path) -> None:
    """Refuse to overwrite an inventory: it may belong to a lab that is still up."""
    for path in files(inventory_dir):
        if path.exists():
            raise BadInput(
                f"inventory file {path} already exists: another lab may be up "
                "(`harness lab down` it, or remove the file)"
            )


def check_control_paths(spec: LabSpec, state_dir: Path) -> None:
    """Refuse a state directory too long for the SSH control sockets kept in it: ssh would fail to
    reach every host with 'too long for Unix domain socket', after the lab was built."""
    sockets = [state_dir / CONTROL_DIR / spec.address(host) for host in spec.hosts]
    longest = max(len(os.fsencode(path)) for path in sockets) + _SSH_SOCKET_SUFFIX
    if longest > _SOCKET_PATH_MAX:
        room = len(os.fsencode(state_dir)) - (longest - _SOCKET_PATH_MAX)
        raise BadInput(
            f"lab state directory {state_dir} is too long for SSH's control sockets in it ({longest} bytes, "
            f"at most {_SOCKET_PATH_MAX}): choose a --state-dir of at most {max(room, 1)} bytes"
        )


def _host_variables(spec: LabSpec, state_dir: Path) -> dict[str, dict[str, Any]]:
    """Each host's variables, by host name."""
    ssh_options = (
        f"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ControlPath={state_dir / CONTROL_DIR / '%h'}"
    )
    return {
        host.name: {
            "ansible_host": spec.address(host),
            "ansible_port": spec.ssh_port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(state_dir / "id_ed25519"),
            "ansible_ssh_common_args": ssh_options,
            "ansible_python_interpreter": sys.executable,
            "harness_python": sys.executable,
            "harness_root": str(state_dir / "hosts" / host.name / "root"),
            "harness_worker_address": spec.address(host),
            "harness_link_shaping": "none" if spec.links is not None else "tc",
            "lab_cpu_quota": host.cpu_quota,
            **host.vars,
        }
        for host in spec.hosts
    }


def write(spec: LabSpec, state_dir: Path, inventory_dir: Path, observer_namespace: str) -> list[Path]:
    """Write ``hosts.yml`` and ``group_vars/all.yml``; the files written."""
    variables = _host_variables(spec, state_dir)
    groups: dict[str, dict[str, Any]] = {}
    for host in spec.hosts:
        groups.setdefault(host.group, {"hosts": {}})["hosts"][host.name] = variables[host.name]
    for name, children in spec.gathering_groups.items():
        groups[name] = {"children": dict.fromkeys(children)}
    hosts_path, group_vars_path = files(inventory_dir)
    _write_yaml(
        hosts_path,
        "The virtual lab: each host a network namespace with its own sshd, reachable only from inside\n"
        "the lab. Written by `harness lab up`, removed by `harness lab down` (see group_vars/all.yml).\n"
        f"Run Ansible and sweeps inside the observer: ip netns exec {observer_namespace} ...",
        {"all": {"children": groups}},
    )
    _write_yaml(
        group_vars_path,
        "Lab-wide facts: where the lab records what it made, and the namespace the controller runs in.",
        {STATE_DIR_VARIABLE: str(state_dir), "harness_lab_observer_namespace": observer_namespace},
    )
    return [hosts_path, group_vars_path]


def state_dir_of(inventory_dir: Path) -> Path | None:
    """The state directory of the lab that wrote ``inventory_dir``, or None if no lab wrote it."""
    path = inventory_dir / GROUP_VARS_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    value = data.get(STATE_DIR_VARIABLE) if isinstance(data, dict) else None
    return Path(value) if isinstance(value, str) else None


class _Dumper(yaml.SafeDumper):
    """Writes long strings of words (the SSH options under a long state path) folded, one
    ``-o OPTION`` per line, so lines stay within yamllint's 120 columns; folding joins them again."""

    def write_folded(self, text: str) -> None:
        width, self.best_width = self.best_width, (self.indent or 0) + 2
        try:
            super().write_folded(text)
        finally:
            self.best_width = width


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = ">" if len(value) > _FOLD_AT and " " in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_FOLD_AT = 60
_Dumper.add_representer(str, _represent_text)


def _write_yaml(path: Path, comment: str, data: dict[str, Any]) -> None:
    """yamllint-clean YAML: a document start, the comment, then the data."""
    lines = "".join(f"# {line}\n" for line in comment.splitlines())
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
    path.write_text(f"---\n{lines}{body}")
