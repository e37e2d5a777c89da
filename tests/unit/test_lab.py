"""The virtual lab's spec, inventory and status, none of which needs root or a namespace."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import harness.lab as lab
from harness.cli import cli
from harness.errors import BadInput
from harness.lab import DEFAULT_STATE_DIR, inventory
from harness.lab.spec import LabSpec, load_spec

REPO = Path(__file__).resolve().parents[2]
SPEC_ERRORS = [
    (
        "hosts:\n  - {name: Bad_Name, group: rpi}\n  - {name: o1, group: observer}\n",
        "field hosts[0].name: expected a host name of lowercase letters, digits and '-', starting with a letter, "
        "at most 32 characters (got 'Bad_Name')",
    ),
    (
        "hosts:\n  - {name: r1, group: rpi, cpu: 1}\n  - {name: o1, group: observer}\n",
        "field hosts[0].cpu: unknown field (expected one of: name, group, cpu_quota)",
    ),
    (
        "hosts:\n  - {name: r1, group: rpi, cpu_quota: 0}\n  - {name: o1, group: observer}\n",
        "field hosts[0].cpu_quota: expected a number >= 0.01 (got 0)",
    ),
    (
        "hosts:\n  - {name: r1, group: rpi}\n",
        "field hosts: expected exactly one host in group 'observer', where the controller runs (got 0)",
    ),
    (
        "hosts:\n  - {name: r1, group: rpi}\n  - {name: r1, group: observer}\n",
        "field hosts: host names must be unique (r1 given more than once)",
    ),
    (
        "hosts:\n  - {name: bridge, group: rpi}\n  - {name: o1, group: observer}\n",
        "field hosts[0].name: 'bridge' names the lab's bridge namespace: choose another host name",
    ),
    (
        "hosts:\n  - {name: rpi, group: rpi}\n  - {name: o1, group: observer}\n",
        "field hosts: host rpi has the name of a group: Ansible would confuse the two",
    ),
    ("hosts:\n  - {name: r1}\n  - {name: o1, group: observer}\n", "field hosts[0].group: required field is missing"),
    ("hosts: [r1]\n", "field hosts[0]: expected a mapping (got 'r1')"),
    (
        "subnet: 8.8.8.0/24\n",
        "field subnet: expected a private IPv4 subnet (10/8, 172.16/12, 192.168/16) with room for hosts "
        "(got '8.8.8.0/24')",
    ),
    (
        "subnet: 10.0.0.1/24\n",
        "field subnet: expected an IPv4 subnet like 10.231.0.0/24 (10.0.0.1/24 has host bits set)",
    ),
    (
        "subnet: 10.0.0.0/30\nhosts:\n  - {name: r1, group: rpi}\n  - {name: r2, group: rpi}\n"
        "  - {name: o1, group: observer}\n",
        "field hosts: 3 hosts do not fit in subnet 10.0.0.0/30 (2 addresses)",
    ),
    ('ssh_port: "22"\n', "field ssh_port: expected an integer (got '22')"),
    ("ssh_port: 0\n", "field ssh_port: expected a number >= 1 (got 0)"),
    (
        "prefix: Lab\n",
        "field prefix: expected a namespace prefix of lowercase letters, digits and '-', starting with a letter, "
        "at most 16 characters (got 'Lab')",
    ),
    ("name: lab\n", "field name: unknown field (expected one of: prefix, subnet, ssh_port, hosts, groups)"),
    ("- a\n", "expected a mapping with fields prefix, subnet, ssh_port, hosts, groups"),
    (
        "groups: {edge: [rpi, pi]}\n",
        "field groups: 'edge' gathers 'pi': expected host groups of this spec (gpu, jetson, observer, rpi)",
    ),
    ("groups: {rpi: [gpu]}\n", "field groups: 'rpi' already names a host or a host group: choose another name"),
    (
        "groups: {edge: []}\n",
        "field groups: 'edge' gathers nothing: expected host groups of this spec (gpu, jetson, observer, rpi)",
    ),
    ("hosts: [{name: r1}\n", "YAML error: expected ',' or ']', but got '<stream end>'"),
]


@pytest.mark.parametrize(("text", "message"), SPEC_ERRORS, ids=[message[:40] for _, message in SPEC_ERRORS])
def test_spec_errors_are_one_line_naming_file_and_field(tmp_path, text, message):
    path = tmp_path / "lab.yml"
    path.write_text("---\n" + text)
    with pytest.raises(BadInput) as error:
        load_spec(path)
    where = f"{path}:3" if message.startswith("YAML") else str(path)
    assert str(error.value) == f"lab spec {where}: {message}"


def test_two_problems_name_the_first_and_count_the_rest(tmp_path):
    path = tmp_path / "lab.yml"
    path.write_text("---\nssh_port: 0\nprefix: Lab\n")
    with pytest.raises(BadInput, match=r"^lab spec .*: field prefix: .* \(and 1 more problem\)$"):
        load_spec(path)


def test_a_missing_spec_file_is_named(tmp_path):
    with pytest.raises(BadInput) as error:
        load_spec(tmp_path / "none.yml")
    assert str(error.value) == f"lab spec {tmp_path / 'none.yml'}: cannot be read (No such file or directory)"


def test_the_default_lab_is_rpi_jetson_gpu_and_observer():
    spec = load_spec(None)
    assert [(host.name, host.group, host.cpu_quota) for host in spec.hosts] == [
        ("rpi1", "rpi", 0.5),
        ("jetson1", "jetson", None),
        ("gpu1", "gpu", None),
        ("observer1", "observer", None),
    ]
    assert [spec.address(host) for host in spec.hosts] == ["10.231.0.1", "10.231.0.2", "10.231.0.3", "10.231.0.4"]
    assert spec.observer.name == "observer1"
    assert spec.ssh_port == 22


def test_a_spec_file_is_read(tmp_path):
    path = tmp_path / "lab.yml"
    path.write_text(
        "---\nprefix: t1-\nsubnet: 192.168.77.0/28\nhosts:\n  - {name: pi, group: edge, cpu_quota: 1}\n"
        "  - {name: ctl, group: observer}\n"
    )
    spec = load_spec(path)
    assert spec.gathering_groups == {}, "a spec whose hosts are already in edge gets no default groups"
    assert spec.prefix == "t1-"
    assert spec.hosts[0].cpu_quota == 1.0
    assert [spec.address(host) for host in spec.hosts] == ["192.168.77.1", "192.168.77.2"]


def test_inventory_has_each_group_and_every_variable_a_play_needs(tmp_path):
    spec = load_spec(None)
    state_dir, inventory_dir = DEFAULT_STATE_DIR, tmp_path / "inventory"
    (inventory_dir / "group_vars").mkdir(parents=True)
    written = inventory.write(spec, state_dir, inventory_dir, "hlab-observer1")
    assert written == [inventory_dir / "hosts.yml", inventory_dir / "group_vars" / "all.yml"]
    data = yaml.safe_load((inventory_dir / "hosts.yml").read_text())
    groups = data["all"]["children"]
    assert {name: list(group.get("hosts", group.get("children"))) for name, group in groups.items()} == {
        "rpi": ["rpi1"],
        "jetson": ["jetson1"],
        "gpu": ["gpu1"],
        "observer": ["observer1"],
        "edge": ["rpi"],
        "cloud": ["gpu"],
    }, "the seed's set-up under the groups manifests/alexnet.yml names"
    assert groups["rpi"]["hosts"]["rpi1"] == {
        "ansible_host": "10.231.0.1",
        "ansible_port": 22,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(state_dir / "id_ed25519"),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        f"-o ControlPath={state_dir}/cp/%h",
        "ansible_python_interpreter": sys.executable,
        "harness_python": sys.executable,
        "harness_root": str(state_dir / "hosts" / "rpi1" / "root"),
        "harness_worker_address": "10.231.0.1",
        "harness_link_shaping": "tc",
        "lab_cpu_quota": 0.5,
    }
    assert groups["gpu"]["hosts"]["gpu1"]["lab_cpu_quota"] is None
    assert yaml.safe_load(written[1].read_text()) == {
        "harness_lab_state_dir": str(state_dir),
        "harness_lab_observer_namespace": "hlab-observer1",
    }
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "yamllint"), "--strict", "-c", str(REPO / ".yamllint"), str(inventory_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout


def test_a_spec_names_the_groups_that_gather_its_device_groups(tmp_path):
    path = tmp_path / "lab.yml"
    path.write_text("---\ngroups: {edge: [rpi, jetson]}\n")
    (tmp_path / "inventory" / "group_vars").mkdir(parents=True)
    inventory.write(load_spec(path), tmp_path / "state", tmp_path / "inventory", "hlab-observer1")
    groups = yaml.safe_load((tmp_path / "inventory" / "hosts.yml").read_text())["all"]["children"]
    assert groups["edge"] == {"children": {"rpi": None, "jetson": None}} and "cloud" not in groups


def test_a_state_directory_too_long_for_ssh_control_sockets_is_refused():
    inventory.check_control_paths(LabSpec(), DEFAULT_STATE_DIR)
    inventory.check_control_paths(LabSpec(), Path("/tmp/" + "x" * 71))
    long = Path("/tmp/" + "x" * 80)
    with pytest.raises(BadInput) as error:
        inventory.check_control_paths(LabSpec(), long)
    assert str(error.value) == (
        f"lab state directory {long} is too long for SSH's control sockets in it (116 bytes, at most 107): "
        "choose a --state-dir of at most 76 bytes"
    )


def test_an_inventory_is_traced_back_to_its_lab(tmp_path):
    (tmp_path / "vlab" / "group_vars").mkdir(parents=True)
    inventory.write(LabSpec(), tmp_path / "state", tmp_path / "vlab", "hlab-observer1")
    assert lab.lab_state_dir(tmp_path / "vlab") == tmp_path / "state"
    assert lab.lab_state_dir(REPO / "inventory" / "local") is None
    default = inventory.state_dir_of(lab.DEFAULT_INVENTORY_DIR) or lab.DEFAULT_STATE_DIR
    assert lab.lab_state_dir(lab.DEFAULT_INVENTORY_DIR) == default


def test_inventory_files_of_another_lab_are_not_overwritten(tmp_path):
    (tmp_path / "hosts.yml").write_text("---\n")
    with pytest.raises(BadInput, match=r"inventory file .*hosts.yml already exists: another lab may be up"):
        inventory.check_free(tmp_path)


def test_without_a_lab_nothing_is_up_and_no_command_is_made(tmp_path):
    current = lab.status(tmp_path)
    assert (current.recorded, current.up, current.hosts) == (False, False, ())
    with pytest.raises(BadInput) as error:
        lab.check_lab_up(tmp_path)
    assert str(error.value) == "the virtual lab is not up: run `harness lab up` (as root)"
    with pytest.raises(BadInput, match="the virtual lab is not up"):
        lab.observer_command(tmp_path, ["true"])
    assert not lab.inside_observer(tmp_path)


@pytest.mark.parametrize("command", ["up", "down"])
def test_without_root_lab_says_so_in_one_line(monkeypatch, tmp_path, command):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = CliRunner().invoke(cli, ["lab", command, "--state-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "harness: error: harness lab needs root: network namespaces, veth links and sshd (run it with sudo)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_status_without_a_lab(tmp_path):
    result = CliRunner().invoke(cli, ["lab", "status", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert result.stdout == f"no lab recorded in {tmp_path}: the virtual lab is not up\n"
