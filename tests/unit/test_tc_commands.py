"""The link_shaping role's harness_tc module: the exact tc commands for each case, against a fake kernel.

The fake answers the module's reads (``ip -j link``, ``tc -j qdisc``, ``tc class``, ``tc -j filter``,
ethtool) with output captured from iproute2 6.1, fails the probe's tries for the kernel parts it is
told are missing with the kernel's own messages, and records every other command as done.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MODULE_PATH = Path(__file__).resolve().parents[2] / "roles" / "link_shaping" / "library" / "harness_tc.py"
_spec = importlib.util.spec_from_file_location("harness_tc", MODULE_PATH)
tc = importlib.util.module_from_spec(_spec)
sys.modules["harness_tc"] = tc
_spec.loader.exec_module(tc)

HOST = "edge-1"
PROBE = "tcprobe"
DEFAULT_ROOT = [{"kind": "noqueue", "handle": "0:", "root": True, "refcnt": 2, "options": {}}]
TBF = "tc qdisc add dev eth1 root handle 5150: tbf rate 4000000bps burst 16000 latency 1000ms"
HTB_CLASS = "htb rate 4000000bps ceil 4000000bps burst 16000 cburst 16000 quantum 1514"
READS = {"-j", "show", "-V", "--version", "-k"}


class FakeKernel:
    """Canned answers for reads; ``missing`` names the qdiscs, classifiers and device types it lacks."""

    def __init__(self, *, missing=(), qdiscs=None, classes=None, filters=None, links=None, ethtool=None):
        self.missing = set(missing)
        self.qdiscs = {"eth1": DEFAULT_ROOT, **(qdiscs or {})}
        self.classes = classes or {}
        self.filters = filters or {}
        self.links = {"eth1": {"ifname": "eth1", "mtu": 1500, "flags": ["UP"]}, **(links or {})}
        self.ethtool = ethtool
        self.calls: list[list[str]] = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        line = " ".join(argv)
        if argv[:4] == ["ip", "-j", "link", "show"]:
            link = self.links.get(argv[-1])
            return (0, json.dumps([link]), "") if link else (1, "", f'Device "{argv[-1]}" does not exist.')
        if argv[:2] == ["ip", "link"] and argv[2:4] == ["add", PROBE]:
            kind = argv[5]
            return (2, "", "Error: Unknown device type.") if kind in self.missing else (0, "", "")
        if argv[:3] == ["tc", "-j", "qdisc"]:
            return 0, json.dumps(self.qdiscs.get(argv[-1], DEFAULT_ROOT)), ""
        if argv[:3] == ["tc", "class", "show"]:
            return 0, self.classes.get(argv[-1], ""), ""
        if argv[:3] == ["tc", "-j", "filter"]:
            return 0, json.dumps(self.filters.get((argv[5], argv[-1]), [])), ""
        if argv[0] == "ethtool":
            if self.ethtool is None:
                return 1, "", 'exec of "ethtool" failed: No such file or directory'
            return 0, self.ethtool if argv[1] == "-k" else "ethtool version 6.1", ""
        if PROBE in argv and argv[:3] in (["tc", "qdisc", "replace"], ["tc", "qdisc", "add"]):
            kind = argv[argv.index("handle") + 2]
            return (2, "", "Error: Specified qdisc kind is unknown.") if kind in self.missing else (0, "", "")
        lacking = "u32" in self.missing or ("mirred" in line and "mirred" in self.missing)
        if PROBE in argv and argv[:3] == ["tc", "filter", "add"] and lacking:
            return 2, "", "Error: TC classifier not found.\nWe have an error talking to the kernel"
        return 0, "", ""

    def changes(self) -> list[str]:
        """Commands run on anything but the probe device, reads left out."""
        return [" ".join(c) for c in self.calls if PROBE not in c and not READS & set(c[1:4])]


def shape(kernel, check_mode=False, **spec):
    return tc.shape(tc.Spec(**spec), kernel, check_mode=check_mode, host=HOST, probe_device=PROBE)


def test_rate_only_is_one_tbf_with_burst_from_the_rate():
    kernel = FakeKernel(missing={"netem"})
    result = shape(kernel, device="eth1", rate=4_000_000)
    assert result["commands"] == [TBF]
    assert result["changed"] is True
    assert kernel.changes() == [TBF]
    assert result["qdiscs_available"] == ["bfifo", "htb", "ingress", "tbf"]
    assert result["classifiers_available"] == ["mirred", "u32"]
    assert result["offloads"] == {"ethtool": False, "off": [], "on": []}
    assert ["ip", "link", "del", "dev", PROBE] in kernel.calls


def test_burst_never_falls_below_a_frame_or_32_kbit():
    assert tc.burst_bytes(100_000, 1514) == 4000
    assert tc.burst_bytes(300_000, 1514) == 4000
    assert tc.burst_bytes(125_000_000, 1514) == 500_000
    assert tc.burst_bytes(100_000, tc.frame_bytes(9000)) == 9014


def test_rate_and_delay_puts_netem_under_tbf_with_a_raised_limit():
    result = shape(FakeKernel(), device="eth1", rate=4_000_000, delay_ms=20, loss_percent=1)
    assert result["commands"] == [
        TBF,
        "tc qdisc add dev eth1 parent 5150:1 handle 5151: netem delay 20ms loss 1% limit 5411",
    ]
    assert result["qdiscs_available"] == ["bfifo", "htb", "ingress", "netem", "tbf"]


def test_netem_limit_covers_rate_times_delay():
    spec = tc.Spec(device="eth1", rate=12_500_000, delay_ms=200)
    limit = tc.netem_limit(spec, 1514)
    assert limit > 12_500_000 * 0.2 / 1514
    assert limit > tc.NETEM_DEFAULT_LIMIT


def test_delay_without_netem_fails_naming_it_and_changes_nothing():
    kernel = FakeKernel(missing={"netem"})
    with pytest.raises(tc.ShapingError) as error:
        shape(kernel, device="eth1", rate=4_000_000, delay_ms=20)
    assert str(error.value) == (
        "this kernel has no netem qdisc (sch_netem): delay and loss cannot be shaped on edge-1 (device eth1)"
    )
    assert kernel.changes() == []
    assert ["ip", "link", "del", "dev", PROBE] in kernel.calls


def test_peers_get_an_htb_class_bfifo_and_u32_filter_each():
    result = shape(FakeKernel(), device="eth1", rate=4_000_000, peers=("10.0.0.2", "10.0.1.0/24"))
    assert result["commands"] == [
        "tc qdisc add dev eth1 root handle 5150: htb",
        f"tc class add dev eth1 parent 5150: classid 5150:1 {HTB_CLASS}",
        f"tc class add dev eth1 parent 5150: classid 5150:2 {HTB_CLASS}",
        "tc qdisc add dev eth1 parent 5150:1 handle 5151: bfifo limit 4016000",
        "tc qdisc add dev eth1 parent 5150:2 handle 5152: bfifo limit 4016000",
        "tc filter add dev eth1 parent 5150: protocol ip prio 1 u32 match ip dst 10.0.0.2/32 flowid 5150:1",
        "tc filter add dev eth1 parent 5150: protocol ip prio 1 u32 match ip dst 10.0.1.0/24 flowid 5150:2",
    ]


def test_peers_with_delay_get_netem_leaves():
    result = shape(FakeKernel(), device="eth1", rate=4_000_000, delay_ms=20, peers=("10.0.0.2",))
    assert result["commands"][2] == "tc qdisc add dev eth1 parent 5150:1 handle 5151: netem delay 20ms limit 5411"


def test_peers_without_u32_fail_naming_the_classifier():
    kernel = FakeKernel(missing={"u32", "netem"})
    with pytest.raises(tc.ShapingError) as error:
        shape(kernel, device="eth1", rate=4_000_000, peers=("10.0.0.2",))
    assert str(error.value) == (
        "this kernel has no u32 classifier (cls_u32): traffic to peers 10.0.0.2 cannot be told apart from the "
        "rest (leave the peers out to shape everything leaving eth1) on edge-1 (device eth1)"
    )
    assert kernel.changes() == []


def test_ingress_redirects_to_an_ifb_shaped_the_same_way():
    result = shape(FakeKernel(), device="eth1", rate=4_000_000, ingress=True)
    assert result["commands"] == [
        TBF,
        "ip link add ifb5150-eth1 type ifb",
        "ip link set dev ifb5150-eth1 up",
        "tc qdisc add dev ifb5150-eth1 root handle 5150: tbf rate 4000000bps burst 16000 latency 1000ms",
        "tc qdisc add dev eth1 handle ffff: ingress",
        "tc filter add dev eth1 parent ffff: protocol all prio 20816 u32 match u32 0 0 "
        "action mirred egress redirect dev ifb5150-eth1",
    ]


def test_ingress_peers_match_the_source_address():
    result = shape(FakeKernel(), device="eth1", rate=4_000_000, peers=("10.0.0.2",), ingress=True)
    assert (
        "tc filter add dev ifb5150-eth1 parent 5150: protocol ip prio 1 u32 match ip src 10.0.0.2/32 flowid 5150:1"
        in result["commands"]
    )


def test_ingress_without_ifb_fails_naming_it():
    with pytest.raises(tc.ShapingError, match=r"^this kernel has no ifb device \(ifb module\): incoming traffic"):
        shape(FakeKernel(missing={"ifb"}), device="eth1", rate=4_000_000, ingress=True)


def test_a_missing_device_is_named():
    with pytest.raises(tc.ShapingError, match=r"^there is no network device eth9 on edge-1$"):
        shape(FakeKernel(), device="eth9", rate=4_000_000)


def test_someone_elses_root_qdisc_is_never_replaced():
    theirs = [{"kind": "htb", "handle": "1:", "root": True, "options": {}}]
    kernel = FakeKernel(qdiscs={"eth1": theirs})
    with pytest.raises(tc.ShapingError, match=r"^eth1 on edge-1 already has a root qdisc htb 1: that this module"):
        shape(kernel, device="eth1", rate=4_000_000)
    assert kernel.changes() == []
    assert shape(kernel, device="eth1", state="absent")["commands"] == []


# Read-back, as iproute2 6.1 prints it for the trees the module builds.

TBF_READ = [
    {
        "kind": "tbf",
        "handle": "5150:",
        "root": True,
        "refcnt": 3,
        "options": {"rate": 4000000, "burst": 16000, "lat": 1000000},
    }
]
NETEM_READ = {
    "kind": "netem",
    "handle": "5151:",
    "parent": "5150:1",
    "options": {
        "limit": 5411,
        "delay": {"delay": 0.02, "jitter": 0, "correlation": 0},
        "loss-random": {"loss": 0.01, "correlation": 0},
        "ecn": False,
        "gap": 0,
    },
}
HTB_READ = [
    {"kind": "htb", "handle": "5150:", "root": True, "refcnt": 3, "options": {"r2q": 10, "default": "0"}},
    {"kind": "bfifo", "handle": "5151:", "parent": "5150:1", "options": {"limit": 4016000}},
]
CLASS_READ = "class htb 5150:1 root leaf 5151: prio 0 rate 32Mbit ceil 32Mbit burst 16000b cburst 16000b \n"


def _u32(flowid, value, off, pref=1, actions=None):
    options = {"fh": "800::800", "order": 2048, "match": {"value": value, "mask": "ffffffff", "off": off}}
    if flowid:
        options["flowid"] = flowid
    if actions:
        options["match"]["mask"] = "0"
        options["actions"] = actions
    header = {"protocol": "ip", "pref": pref, "kind": "u32", "chain": 0}
    return [header, {**header, "options": {"fh": "800:", "ht_divisor": 1}}, {**header, "options": options}]


REDIRECT = _u32(
    None, "0", 0, pref=20816, actions=[{"kind": "mirred", "mirred_action": "redirect", "to_dev": "ifb5150-eth1"}]
)
INGRESS_QDISC = {"kind": "ingress", "handle": "ffff:", "parent": "ffff:fff1", "options": {}}
IFB_LINK = {"ifb5150-eth1": {"ifname": "ifb5150-eth1", "mtu": 1500, "flags": ["BROADCAST", "NOARP", "UP"]}}


def test_read_back_equal_runs_nothing():
    kernel = FakeKernel(qdiscs={"eth1": TBF_READ})
    result = shape(kernel, device="eth1", rate=4_000_000)
    assert result["commands"] == []
    assert result["changed"] is False
    assert result["applied"] == {"eth1": TBF_READ}
    assert kernel.changes() == []


def test_read_back_equal_with_netem_runs_nothing():
    kernel = FakeKernel(qdiscs={"eth1": [*TBF_READ, NETEM_READ]})
    assert shape(kernel, device="eth1", rate=4_000_000, delay_ms=20, loss_percent=1)["commands"] == []


def test_read_back_equal_with_peers_and_ingress_runs_nothing():
    result = shape(_peer_and_ingress_kernel(), device="eth1", rate=4_000_000, peers=("10.0.0.2",), ingress=True)
    assert result["commands"] == []
    assert set(result["applied"]) == {"eth1", "ifb5150-eth1"}
    read = [{"kind": "htb", "classid": "5150:1", "rate": 4_000_000, "ceil": 4_000_000}]
    assert result["classes"] == {"eth1": read, "ifb5150-eth1": read}


def test_a_new_rate_is_changed_in_place():
    kernel = FakeKernel(qdiscs={"eth1": TBF_READ})
    result = shape(kernel, device="eth1", rate=2_000_000)
    assert result["commands"] == [
        "tc qdisc change dev eth1 root handle 5150: tbf rate 2000000bps burst 8000 latency 1000ms",
    ]


def _peer_and_ingress_kernel() -> FakeKernel:
    """eth1 and its ifb shaped to 4 MB/s for peer 10.0.0.2, as iproute2 6.1 reads them back."""
    return FakeKernel(
        qdiscs={"eth1": [*HTB_READ, INGRESS_QDISC], "ifb5150-eth1": HTB_READ},
        classes={"eth1": CLASS_READ, "ifb5150-eth1": CLASS_READ},
        filters={
            ("eth1", "5150:"): _u32("5150:1", "a000002", 16),
            ("ifb5150-eth1", "5150:"): _u32("5150:1", "a000002", 12),
            ("eth1", "ffff:"): REDIRECT,
        },
        links=IFB_LINK,
    )


def test_a_new_rate_for_the_same_peers_changes_each_class_and_queue_both_ways():
    """A sweep's next link: the classes and their queues change, the tree, filters and ifb stay."""
    kernel = _peer_and_ingress_kernel()
    result = shape(kernel, device="eth1", rate=8_000_000, peers=("10.0.0.2",), ingress=True)
    htb = "htb rate 8000000bps ceil 8000000bps burst 32000 cburst 32000 quantum 1514"
    assert result["commands"] == [
        f"tc class change dev eth1 parent 5150: classid 5150:1 {htb}",
        "tc qdisc change dev eth1 parent 5150:1 handle 5151: bfifo limit 8032000",
        f"tc class change dev ifb5150-eth1 parent 5150: classid 5150:1 {htb}",
        "tc qdisc change dev ifb5150-eth1 parent 5150:1 handle 5151: bfifo limit 8032000",
    ]
    assert kernel.changes() == result["commands"]


def test_adding_delay_rebuilds_since_netem_takes_the_leaves_place():
    kernel = _peer_and_ingress_kernel()
    result = shape(kernel, device="eth1", rate=4_000_000, delay_ms=20, peers=("10.0.0.2",))
    assert result["commands"][:2] == [
        "tc qdisc del dev eth1 root handle 5150:",
        "tc qdisc add dev eth1 root handle 5150: htb",
    ]


def test_a_peer_more_or_less_rebuilds():
    kernel = FakeKernel(
        qdiscs={"eth1": HTB_READ},
        classes={"eth1": CLASS_READ},
        filters={("eth1", "5150:"): _u32("5150:1", "a000002", 16)},
    )
    result = shape(kernel, device="eth1", rate=4_000_000, peers=("10.0.0.2", "10.0.0.3"))
    assert result["commands"][:2] == [
        "tc qdisc del dev eth1 root handle 5150:",
        "tc qdisc add dev eth1 root handle 5150: htb",
    ]


def test_dropping_ingress_removes_our_ifb_and_filter():
    kernel = FakeKernel(
        qdiscs={"eth1": [*TBF_READ, INGRESS_QDISC]}, filters={("eth1", "ffff:"): REDIRECT}, links=IFB_LINK
    )
    result = shape(kernel, device="eth1", rate=4_000_000)
    assert result["commands"] == [
        "tc filter del dev eth1 parent ffff: prio 20816",
        "tc qdisc del dev eth1 handle ffff: ingress",
        "ip link del dev ifb5150-eth1",
    ]


def test_absent_removes_only_our_handle():
    kernel = FakeKernel(qdiscs={"eth1": TBF_READ})
    result = shape(kernel, device="eth1", state="absent")
    assert result["commands"] == ["tc qdisc del dev eth1 root handle 5150:"]
    assert kernel.changes() == result["commands"]
    assert not any(PROBE in call for call in kernel.calls)


def test_absent_keeps_someone_elses_ingress_filters():
    theirs = _u32("1:1", "a000009", 16, pref=49152)
    kernel = FakeKernel(
        qdiscs={"eth1": [*TBF_READ, INGRESS_QDISC]}, filters={("eth1", "ffff:"): [*theirs, *REDIRECT]}, links=IFB_LINK
    )
    result = shape(kernel, device="eth1", state="absent")
    assert result["commands"] == [
        "tc qdisc del dev eth1 root handle 5150:",
        "tc filter del dev eth1 parent ffff: prio 20816",
        "ip link del dev ifb5150-eth1",
    ]


def test_absent_with_nothing_of_ours_or_no_device_changes_nothing():
    assert shape(FakeKernel(), device="eth1", state="absent")["changed"] is False
    assert shape(FakeKernel(), device="eth9", state="absent") == {
        "changed": False,
        "commands": [],
        "applied": {},
        "classes": {},
        "qdiscs_available": [],
        "classifiers_available": [],
        "offloads": {"ethtool": False, "off": [], "on": []},
    }


def test_check_mode_reports_without_running():
    kernel = FakeKernel(qdiscs={"eth1": TBF_READ})
    result = shape(kernel, check_mode=True, device="eth1", rate=4_000_000, delay_ms=20, ingress=True)
    assert result["changed"] is True
    assert result["commands"][:3] == [
        "tc qdisc del dev eth1 root handle 5150:",
        TBF,
        "tc qdisc add dev eth1 parent 5150:1 handle 5151: netem delay 20ms limit 5411",
    ]
    assert kernel.changes() == []
    assert result["applied"] == {"eth1": TBF_READ}


def test_offloads_are_turned_off_where_ethtool_is_installed():
    features = (
        "Features for eth1:\ngeneric-segmentation-offload: on\ntcp-segmentation-offload: off\n"
        "\ttx-tcp-segmentation: off\ngeneric-receive-offload: on [fixed]\n"
    )
    result = shape(FakeKernel(ethtool=features, qdiscs={"eth1": TBF_READ}), device="eth1", rate=4_000_000, ingress=True)
    assert "ethtool -K eth1 gso off" in result["commands"]
    assert result["offloads"] == {"ethtool": True, "off": ["gso", "tso"], "on": ["gro"]}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"rate": 0}, "rate 0 on eth1: expected bytes per second > 0"),
        ({"rate": 1000, "peers": ("10.0.0.300",)}, "peer '10.0.0.300': expected an IPv4 address or network"),
        ({"rate": 1000, "handle": "ffff:"}, "handle 'ffff:': expected a major handle like 5150:"),
        ({"rate": 1000, "loss_percent": 120}, "delay 0.0 ms, loss 120%, queue 1000.0 ms on eth1"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(spec, message):
    with pytest.raises(tc.ShapingError, match=re.escape(message)):
        tc.Spec(device="eth1", **spec)


def test_units_tc_prints_are_read_back():
    assert tc._quantity("32Mbit") == 4_000_000
    assert tc._quantity("16000b") == 16000
    assert tc._quantity("64Kb") == 65536
    assert tc._quantity("1.0s") == 1.0
    assert tc._quantity(1_000_000, "lat") == 1.0
    assert tc._quantity("1%") == 0.01


@pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2 (`ip`) to look the device up")
def test_the_ansible_module_names_a_missing_device(tmp_path):
    args = tmp_path / "args.json"
    args.write_text(
        json.dumps({"ANSIBLE_MODULE_ARGS": {"device": "nodev-h5150", "rate": 1000, "_ansible_check_mode": True}})
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    done = subprocess.run([sys.executable, str(MODULE_PATH), str(args)], capture_output=True, text=True, env=env)
    reply = json.loads(done.stdout)
    assert reply["failed"] is True
    assert reply["msg"].startswith("there is no network device nodev-h5150 on ")
