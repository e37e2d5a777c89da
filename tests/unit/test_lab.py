"""The virtual lab's spec, inventory and status, none of which needs root or a namespace."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

import harness.lab as lab
from harness.cli import cli
from harness.errors import BadInput
from harness.lab import DEFAULT_STATE_DIR, inventory, links
from harness.lab.spec import LAB_VARIABLES, LabSpec, load_spec
from harness.lab.state import LabState, PairState

REPO = Path(__file__).resolve().parents[2]
SPEC_ERRORS = [
    (
        "hosts:\n  - {name: Bad_Name, group: rpi}\n  - {name: o1, group: observer}\n",
        "field hosts[0].name: expected a host name of lowercase letters, digits and '-', starting with a letter, "
        "at most 32 characters (got 'Bad_Name')",
    ),
    (
        "hosts:\n  - {name: r1, group: rpi, cpu: 1}\n  - {name: o1, group: observer}\n",
        "field hosts[0].cpu: unknown field (expected one of: name, group, cpu_quota, vars)",
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
    ("name: lab\n", "field name: unknown field (expected one of: prefix, subnet, ssh_port, hosts, groups, links)"),
    ("- a\n", "expected a mapping with fields prefix, subnet, ssh_port, hosts, groups, links"),
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
    (
        "links: {default: {rate: 4MB}}\n",
        "field links.default.rate: rate '4MB': expected a number with a unit (b/s, kb/s, mb/s, gb/s, kib/s, "
        "mib/s, gib/s, bit, kbit, mbit, gbit, kibit, mibit, gibit), like 4MB/s or 32mbit",
    ),
    (
        "links: {default: {rate: 0}}\n",
        "field links.default.rate: rate '0': expected a rate above 0, like 4MB/s; an unshaped link is 'unlimited'",
    ),
    (
        "links: {default: {rate: true}}\n",
        "field links.default.rate: expected a rate like 4MB/s, 32mbit or bytes per second (got True)",
    ),
    ("links: {default: 2MB/s}\n", "field links.default: expected a mapping (got '2MB/s')"),
    ("links: {defaults: {rate: 2MB/s}}\n", "field links.defaults: unknown field (expected one of: default, pairs)"),
    (
        "links: {pairs: [{src: rpi1, dst: gpu1, rate: 2MB/s, delay: 10ms}]}\n",
        "field links.pairs[0].delay: unknown field (expected one of: src, dst, rate)",
    ),
    ("links: {pairs: [{src: rpi1, dst: gpu1}]}\n", "field links.pairs[0].rate: required field is missing"),
    (
        "links: {pairs: [{src: rpi1, dst: gpu9, rate: 2MB/s}]}\n",
        "field links.pairs[0].dst: expected a host of this spec: rpi1, jetson1, gpu1 (got 'gpu9')",
    ),
    (
        "links: {pairs: [{src: observer1, dst: gpu1, rate: 2MB/s}]}\n",
        "field links.pairs[0].src: observer1 is the observer, whose links are never shaped (Ansible's SSH and "
        "the record streams go there): expected one of rpi1, jetson1, gpu1",
    ),
    (
        "links: {pairs: [{src: gpu1, dst: gpu1, rate: 2MB/s}]}\n",
        "field links.pairs[0]: src and dst are both gpu1: expected two different hosts",
    ),
    (
        "links:\n  pairs:\n    - {src: rpi1, dst: gpu1, rate: 2MB/s}\n    - {src: gpu1, dst: rpi1, rate: 2MB/s}\n"
        "    - {src: rpi1, dst: gpu1, rate: 3MB/s}\n",
        "field links.pairs[2]: rpi1 -> gpu1 is given twice (also pairs[0])",
    ),
    (
        "hosts:\n  - {name: r1, group: rpi, vars: {ansible_host: 10.0.0.9}}\n  - {name: o1, group: observer}\n",
        "field hosts[0].vars: ansible_host is written by the lab itself: expected other inventory variables",
    ),
    (
        "hosts:\n  - {name: r1, group: rpi, vars: {harness_speed: [1, 2]}}\n  - {name: o1, group: observer}\n",
        "field hosts[0].vars: variable harness_speed: expected a string, number or boolean (got [1, 2])",
    ),
    (
        "hosts:\n  - {name: r1, group: rpi, vars: [harness_speed]}\n  - {name: o1, group: observer}\n",
        "field hosts[0].vars: expected a mapping (got ['harness_speed'])",
    ),
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
    assert set(groups["rpi"]["hosts"]["rpi1"]) == LAB_VARIABLES, "what a spec's vars may not override"
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


def test_a_lab_that_shapes_its_links_asks_sweeps_to_shape_nothing_more_and_writes_each_hosts_vars(tmp_path):
    path = tmp_path / "lab.yml"
    path.write_text(
        "hosts:\n  - {name: rpi1, group: rpi, vars: {harness_memory_bytes: 2000000, harness_speed: 0.25}}\n"
        "  - {name: gpu1, group: gpu}\n  - {name: observer1, group: observer}\nlinks: {default: {rate: 8MB/s}}\n"
    )
    (tmp_path / "inventory" / "group_vars").mkdir(parents=True)
    inventory.write(load_spec(path), tmp_path / "state", tmp_path / "inventory", "hlab-observer1")
    groups = yaml.safe_load((tmp_path / "inventory" / "hosts.yml").read_text())["all"]["children"]
    rpi1, gpu1 = groups["rpi"]["hosts"]["rpi1"], groups["gpu"]["hosts"]["gpu1"]
    assert (rpi1["harness_link_shaping"], gpu1["harness_link_shaping"]) == ("none", "none")
    assert (rpi1["harness_memory_bytes"], rpi1["harness_speed"]) == (2000000, 0.25)
    assert "harness_memory_bytes" not in gpu1


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


@pytest.mark.parametrize("command", [["up"], ["down"], ["link", "rpi1", "--down"]])
def test_without_root_lab_says_so_in_one_line(monkeypatch, tmp_path, command):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = CliRunner().invoke(cli, ["lab", *command, "--state-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "harness: error: harness lab needs root: network namespaces, veth links and sshd (run it with sudo)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_status_without_a_lab(tmp_path):
    result = CliRunner().invoke(cli, ["lab", "status", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert result.stdout == f"no lab recorded in {tmp_path}: the virtual lab is not up\n"


def _four_hosts(links: dict | None = None) -> LabSpec:
    """rpi1, rpi2, jetson1, gpu1 and the observer, as in the lab where the canned tc output was read."""
    hosts = [{"name": name, "group": name.rstrip("12")} for name in ("rpi1", "rpi2", "jetson1", "gpu1")]
    return LabSpec.model_validate(
        {
            "prefix": "m1-",
            "subnet": "10.234.0.0/24",
            "hosts": [*hosts, {"name": "observer1", "group": "observer"}],
            "links": links,
        }
    )


def test_each_ordered_pair_takes_its_entry_then_the_default_and_the_observer_none():
    spec = _four_hosts(
        {
            "default": {"rate": "8MB/s"},
            "pairs": [
                {"src": "rpi1", "dst": "gpu1", "rate": "16mbit"},
                {"src": "gpu1", "dst": "rpi1", "rate": "unlimited"},
            ],
        }
    )
    rates = {key: pair.rate for key, pair in links.planned(spec).items()}
    assert len(rates) == 12, "every ordered pair of the four hosts, none of the observer"
    assert (rates[("rpi1", "gpu1")], rates[("gpu1", "rpi1")], rates[("rpi2", "gpu1")]) == (2e6, math.inf, 8e6)
    assert not any(pair.shaped for pair in links.planned(_four_hosts()).values())


def test_a_lab_of_more_hosts_than_tc_can_number_is_refused():
    hosts = [{"name": f"h{index}", "group": "rpi"} for index in range(32767)]
    with pytest.raises(ValidationError, match=r"32768 hosts: expected at most 32767 \(tc numbers each host's"):
        LabSpec.model_validate({"subnet": "10.0.0.0/16", "hosts": [*hosts, {"name": "o1", "group": "observer"}]})


def test_the_rate_tc_gets_carries_the_payload_rate_in_full_frames():
    assert (links.tc_rate(2e6), links.burst(2e6), links.queue(2e6)) == (2091161, 3028, 2094189)
    assert (links.tc_rate(8e6), links.burst(8e6)) == (8364641, 8000), "a millisecond at the rate beats two frames"


def test_a_port_gets_its_htb_cut_class_then_one_class_and_filter_per_sender():
    spec = _four_hosts()
    tc = ["tc", "-n", "m1-bridge"]

    def htb_class(classid: str, rate: str, bucket: str) -> list[str]:
        head = [*tc, "class", "replace", "dev", "veth3", "parent", "1:", "classid", classid, "htb"]
        return [*head, "rate", rate, "ceil", rate, "burst", bucket, "cburst", bucket, "quantum", "1514"]

    assert links.port_commands(spec, "gpu1") == [
        [*tc, "qdisc", "add", "dev", "veth3", "root", "handle", "1:", "htb"],
        htb_class("1:1", "1514bps", "3028"),
        [*tc, "qdisc", "replace", "dev", "veth3", "parent", "1:1", "handle", "2:", "bfifo", "limit", "0"],
    ]
    unshaped = PairState("rpi2", "gpu1")
    shaped = PairState("rpi2", "gpu1", 2e6)
    rate_filter = [*tc, "filter", "add", "dev", "veth3", "parent", "1:", "prio", "4", "protocol", "ip", "u32"]
    rate_filter += ["match", "ip", "src", "10.234.0.2/32", "flowid", "1:3"]
    assert links.pair_commands(spec, unshaped, shaped) == [
        htb_class("1:3", "2091161bps", "3028"),
        [*tc, "qdisc", "replace", "dev", "veth3", "parent", "1:3", "handle", "4:", "bfifo", "limit", "2094189"],
        rate_filter,
    ]
    cut = [*tc, "filter", "add", "dev", "veth3", "parent", "1:", "prio", "3", "protocol", "ip", "u32"]
    cut += ["match", "ip", "src", "10.234.0.2/32", "flowid", "1:1"]
    assert links.pair_commands(spec, shaped, PairState("rpi2", "gpu1", 2e6, cut=True)) == [cut]
    assert links.pair_commands(spec, PairState("rpi2", "gpu1", 2e6, cut=True), unshaped) == [
        [*tc, "filter", "del", "dev", "veth3", "parent", "1:", "prio", "3"],
        [*tc, "filter", "del", "dev", "veth3", "parent", "1:", "prio", "4"],
        [*tc, "class", "del", "dev", "veth3", "classid", "1:3"],
    ]
    assert links.pair_commands(spec, shaped, PairState("rpi2", "gpu1", 3e6)) == [
        htb_class("1:3", "3136741bps", "3028"),
        [*tc, "qdisc", "replace", "dev", "veth3", "parent", "1:3", "handle", "4:", "bfifo", "limit", "3139769"],
    ], "a new rate changes the class and its queue; the filter stays"
    assert links.pair_commands(spec, shaped, shaped) == []


# Read from this kernel (iproute2 6.1) on gpu1's port after `lab link rpi1 --down`, `lab link rpi2 gpu1
# --rate 3MB/s` and `lab link jetson1 gpu1 --rate 4MB/s`; the u32 hash tables' own entries included.
TC_QDISCS = (
    '[{"kind":"htb","handle":"1:","root":true,"refcnt":3,"options":{"r2q":10,"default":"0",'
    '"direct_packets_stat":5617,"direct_qlen":1000}},{"kind":"bfifo","handle":"2:","parent":"1:1",'
    '"options":{"limit":0}},{"kind":"bfifo","handle":"4:","parent":"1:3","options":{"limit":3139769}},'
    '{"kind":"bfifo","handle":"5:","parent":"1:4","options":{"limit":4186321}}]'
)
TC_CLASSES = "".join(
    f"{line} \n"  # tc ends each line with a space
    for line in (
        "class htb 1:4 root leaf 5: prio 0 rate 33458Kbit ceil 33458Kbit burst 3994b cburst 3994b",
        "class htb 1:1 root leaf 2: prio 0 rate 12112bit ceil 12112bit burst 3028b cburst 3028b",
        "class htb 1:3 root leaf 4: prio 0 rate 25093Kbit ceil 25093Kbit burst 3023b cburst 3023b",
    )
)
TC_FILTERS = [
    {"protocol": "ip", "pref": pref, "kind": "u32", "chain": 0, "options": options}
    for pref, options in [
        (1, {"fh": "803:", "ht_divisor": 1}),
        (1, {"fh": "803::800", "flowid": "1:1", "match": {"value": "aea0001", "mask": "ffffffff", "off": 12}}),
        (4, {"fh": "800::800", "flowid": "1:3", "match": {"value": "aea0002", "mask": "ffffffff", "off": 12}}),
        (6, {"fh": "802::800", "flowid": "1:4", "match": {"value": "aea0003", "mask": "ffffffff", "off": 12}}),
    ]
]


def _into_gpu1(**rates) -> dict:
    spec = _four_hosts()
    pairs = links.unshaped(spec)
    pairs[("rpi1", "gpu1")] = PairState("rpi1", "gpu1", cut=True)
    pairs |= {(src, "gpu1"): PairState(src, "gpu1", rate) for src, rate in rates.items()}
    return links.expected_port(spec, "gpu1", pairs)


def test_what_tc_shows_is_read_in_the_terms_the_lab_sets():
    seen = links.parse_port(json.loads(TC_QDISCS), TC_CLASSES, TC_FILTERS)
    assert seen.root == "htb 1:"
    assert seen.leaves == {"1:1": "bfifo limit 0", "1:3": "bfifo limit 3139769", "1:4": "bfifo limit 4186321"}
    assert seen.classes == {"1:1": (1514, 1514), "1:3": (3136625, 3136625), "1:4": (4182250, 4182250)}
    assert seen.filters == {1: ("10.234.0.1", "1:1"), 4: ("10.234.0.2", "1:3"), 6: ("10.234.0.3", "1:4")}
    assert links.differences(_into_gpu1(rpi2=3e6, jetson1=4e6), seen) == []


def test_a_port_that_differs_from_what_was_asked_is_described():
    seen = links.parse_port(json.loads(TC_QDISCS), TC_CLASSES, TC_FILTERS)
    assert links.differences(_into_gpu1(rpi2=3e6, jetson1=5e6), seen) == [
        "class 1:4: rate 4182250 ceil 4182250 B/s, expected rate 5227901 ceil 5227901 B/s",
        "leaf of class 1:4: bfifo limit 4186321, expected bfifo limit 5232901",
    ]
    assert links.differences(_into_gpu1(rpi2=3e6), seen) == [
        "class 1:4: rate 4182250 ceil 4182250 B/s, expected none",
        "leaf of class 1:4: bfifo limit 4186321, expected none",
        "filter prio 6: 10.234.0.3 to 1:4, expected none",
    ]
    bare = links.parse_port([{"kind": "noqueue", "handle": "0:", "root": True}], "", [])
    assert links.differences(_into_gpu1(), bare)[:2] == [
        "root qdisc noqueue 0:, expected htb 1:",
        "class 1:1: none, expected rate 1514 ceil 1514 B/s",
    ]


def test_lab_status_shows_the_pairs_the_state_records(tmp_path):
    spec = _four_hosts({"pairs": [{"src": "rpi1", "dst": "gpu1", "rate": "2MB/s"}]})
    state = LabState.begin(tmp_path, spec.model_dump(mode="json"), made_state_dir=False)
    state.record_shaping(
        ["gpu1"],
        [
            {"src": "rpi1", "dst": "gpu1", "rate": 2e6, "cut": False},
            {"src": "gpu1", "dst": "rpi1", "rate": None, "cut": True},
        ],
    )
    assert lab.status(tmp_path).pairs == (PairState("rpi1", "gpu1", 2e6), PairState("gpu1", "rpi1", cut=True))
    result = CliRunner().invoke(cli, ["lab", "status", "--state-dir", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    rows = [line.split("│")[1:-1] for line in result.stdout.splitlines() if line.count("│") == 7]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["rpi1", "gpu1", "2 MB/s", "2091161", "3028", "up"],
        ["gpu1", "rpi1", "unlimited", "-", "-", "cut"],
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["rpi1", "gpu1"], "harness lab link: expected one of --rate RATE, --down or --up"),
        (
            ["rpi1", "gpu1", "--rate", "2MB/s", "--down"],
            "harness lab link: expected one of --rate RATE, --down or --up",
        ),
        (["rpi1", "--rate", "2MB/s"], "harness lab link: --rate needs DST (the link from SRC to DST)"),
    ],
)
def test_lab_link_takes_one_change(tmp_path, arguments, message):
    result = CliRunner().invoke(cli, ["lab", "link", *arguments, "--state-dir", str(tmp_path)])
    assert (result.exit_code, result.stderr) == (2, f"harness: error: {message}\n")
