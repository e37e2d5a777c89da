#!/usr/bin/python
"""Shape a device's traffic with tc, idempotently, and only ever touch what this module added.

The logic is in pure functions that take ``run(argv) -> (rc, stdout, stderr)``, so tests drive it
with canned kernel answers or run it through ``ip netns exec``; ``main`` only adapts AnsibleModule.
Written for Python 3.8 and later, since the edge hosts' interpreters (Jetson, older Pi OS) lag.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import platform
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    Run = Callable[[list[str]], tuple[int, str, str]]

DOCUMENTATION = r"""
---
module: harness_tc
short_description: Shape a device's traffic with tc (rate, delay, loss, per peer, ingress)
description:
  - Probes which qdiscs, classifiers and actions the kernel has on a throwaway device (created and
    removed again, in check mode too), then shapes O(device) with C(tbf) (rate only), C(htb) with one
    class and one C(u32) filter per peer (O(peers)), and C(netem) under either for delay and loss.
  - O(ingress) shapes incoming traffic too, by redirecting it to an ifb device shaped the same way.
  - Reads back C(tc -j qdisc show), the classes and the filters, and changes only what differs: a
    new rate, delay or loss on the same peers is changed in place (C(tc class change), C(tc qdisc
    change)); the tree is rebuilt only where its layout differs (peers, netem added or removed).
    Asking for something the kernel lacks (netem, u32, ifb) fails naming it; it is never skipped.
  - Only the root qdisc with O(handle), its children, an ifb named after O(handle) and O(device),
    and the redirect filter whose priority is the handle's major number are ever changed or removed.
  - Turns off GSO and TSO (and GRO with O(ingress)) with C(ethtool) where it is installed, since
    super-packets distort shaping. They are left off when the shaping is removed.
options:
  device:
    description: The network device whose traffic is shaped.
    type: str
    required: true
  rate:
    description: The link's rate in bytes per second at the link layer (Ethernet frames).
    type: int
  delay_ms:
    description: One-way delay added to every packet, in milliseconds (needs netem).
    type: float
    default: 0
  loss_percent:
    description: Random loss, in percent of packets (needs netem).
    type: float
    default: 0
  peers:
    description:
      - IPv4 addresses (or networks) whose traffic is shaped, each to O(rate) on its own (needs htb
        and u32). Empty shapes everything leaving O(device).
    type: list
    elements: str
    default: []
  ingress:
    description: Shape incoming traffic too, through an ifb device (needs ifb, ingress, u32, mirred).
    type: bool
    default: false
  burst:
    description:
      - Bytes a token bucket lets leave at line speed (tbf's burst, each htb class's burst and
        cburst). 0 takes the larger of a timer tick of the rate, a frame and 4000 bytes; a message
        then arrives early by up to the burst's time at the rate (4 ms at 4 MB/s with 16000).
    type: int
    default: 0
  queue_ms:
    description:
      - How long a packet may wait for the rate before the queue is full and drops it; sets tbf's
        latency, each htb class's bfifo and netem's packet limit.
    type: float
    default: 1000
  handle:
    description: The major handle of the root qdisc this module owns, with its colon.
    type: str
    default: "5150:"
  state:
    description: present shapes; absent removes only what this module added.
    type: str
    choices: [present, absent]
    default: present
author:
  - split-harness
"""

EXAMPLES = r"""
- name: Shape everything leaving eth1 to 4 MB/s with 20 ms of delay
  harness_tc:
    device: eth1
    rate: 4000000
    delay_ms: 20

- name: Shape only the traffic to the cloud host, both ways
  harness_tc:
    device: eth1
    rate: 4000000
    peers: [10.0.0.2]
    ingress: true

- name: Remove the shaping
  harness_tc:
    device: eth1
    state: absent
"""

RETURN = r"""
applied:
  description: The parsed C(tc -j qdisc show) of the device (and of the ifb) after the change, by device name.
  returned: always
  type: dict
  sample: {"eth1": [{"kind": "tbf", "handle": "5150:", "root": true, "options": {"rate": 4000000}}]}
classes:
  description:
    - The htb classes under the module's root after the change, by device name, each with its rate
      and ceil in bytes per second as tc prints them (four digits).
  returned: always
  type: dict
  sample: {"eth1": [{"kind": "htb", "classid": "5150:1", "rate": 4182000.0, "ceil": 4182000.0}]}
commands:
  description: The commands run, or in check mode the commands that would run.
  returned: always
  type: list
  elements: str
  sample: ["tc qdisc add dev eth1 root handle 5150: tbf rate 4000000bps burst 16000 latency 1000ms"]
qdiscs_available:
  description: The qdiscs the kernel has, among those probed (tbf, htb, netem, bfifo, ingress).
  returned: always
  type: list
  elements: str
  sample: [bfifo, htb, ingress, tbf]
classifiers_available:
  description: The classifiers and actions the kernel has, among those probed (u32, mirred).
  returned: always
  type: list
  elements: str
  sample: [mirred, u32]
offloads:
  description: Whether ethtool is installed, and the segmentation offloads that are off and on after the run.
  returned: always
  type: dict
  sample: {"ethtool": true, "off": [gso, tso], "on": []}
"""

HZ = 250
"""The lowest timer frequency in common kernels: a burst below rate/HZ cannot reach the rate."""
MIN_BURST = 4000
"""32 kbit, the smallest burst measured to reach the rate here (tbf rate 4mbit burst 32kbit)."""
ETHERNET_HEADER = 14
NETEM_DEFAULT_LIMIT = 1000
INGRESS = "ffff:"
DEFAULT_HANDLE = "5150:"
OFFLOADS = {
    "gso": "generic-segmentation-offload",
    "tso": "tcp-segmentation-offload",
    "gro": "generic-receive-offload",
}
_MISSING = re.compile(r"unknown|not found|failed to load|no such", re.IGNORECASE)
_CLASS_LINE = re.compile(r"^class (\S+) (\S+) .*?\brate (\S+) ceil (\S+)")


class ShapingError(Exception):
    """What cannot be shaped, where, and why, in words an operator can act on."""


@dataclass(frozen=True)
class Spec:
    """What is asked for; checked on construction so no half-built tree follows from bad input."""

    device: str
    rate: int = 0
    delay_ms: float = 0.0
    loss_percent: float = 0.0
    peers: tuple[str, ...] = ()
    ingress: bool = False
    burst: int = 0
    queue_ms: float = 1000.0
    handle: str = DEFAULT_HANDLE
    state: str = "present"

    def __post_init__(self):
        if not re.fullmatch(r"[0-9a-fA-F]{1,4}:0*", self.handle) or self.major in (0, 0xFFFF):
            raise ShapingError(f"handle {self.handle!r}: expected a major handle like 5150:, not 0: or ffff:")
        if self.major + max(len(self.peers), 1) > 0xFFFE:
            raise ShapingError(f"handle {self.handle}: too high to number a child qdisc for every peer")
        if self.state == "absent":
            return
        if self.rate <= 0:
            raise ShapingError(f"rate {self.rate} on {self.device}: expected bytes per second > 0")
        if self.burst < 0:
            raise ShapingError(f"burst {self.burst} on {self.device}: expected bytes >= 0 (0: chosen from the rate)")
        if self.delay_ms < 0 or not 0 <= self.loss_percent <= 100 or self.queue_ms <= 0:
            raise ShapingError(
                f"delay {self.delay_ms} ms, loss {self.loss_percent}%, queue {self.queue_ms} ms on {self.device}: "
                "expected delay >= 0, loss in 0..100 and queue > 0"
            )
        for peer in self.peers:
            try:
                ipaddress.IPv4Network(peer, strict=False)
            except ValueError:
                raise ShapingError(f"peer {peer!r}: expected an IPv4 address or network") from None

    @property
    def major(self) -> int:
        return int(self.handle.split(":")[0], 16)

    @property
    def root(self) -> str:
        """The handle as tc prints it (lower-case hex, no leading zeros, no minor)."""
        return f"{self.major:x}:"

    @property
    def netem(self) -> bool:
        return self.delay_ms > 0 or self.loss_percent > 0

    @property
    def ifb(self) -> str:
        """The ifb device's name: the handle and the device, so two shaped devices never share one."""
        return f"ifb{self.major:x}-{self.device}"[:15]


@dataclass(frozen=True)
class Kernel:
    """What the probe found the kernel able to do."""

    qdiscs: frozenset
    classifiers: frozenset
    ifb: bool


@dataclass(frozen=True)
class Qdisc:
    """One qdisc of the tree: its place, its tc arguments and the read-back options they should give."""

    kind: str
    handle: str
    parent: str
    args: tuple[str, ...]
    expect: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class HtbClass:
    classid: str
    rate: int
    args: tuple[str, ...]


@dataclass(frozen=True)
class Match:
    """A u32 filter sending packets to or from ``network`` to class ``flowid``."""

    flowid: str
    network: str
    direction: str

    def key(self) -> tuple[str, int, int, int]:
        net = ipaddress.IPv4Network(self.network, strict=False)
        return (self.flowid, int(net.network_address), int(net.netmask), 16 if self.direction == "dst" else 12)


@dataclass(frozen=True)
class Tree:
    qdiscs: tuple[Qdisc, ...]
    classes: tuple[HtbClass, ...] = ()
    matches: tuple[Match, ...] = ()


def frame_bytes(mtu: int) -> int:
    return max(mtu, 1500) + ETHERNET_HEADER


def burst_bytes(rate: int, frame: int) -> int:
    """At least a timer tick's worth of the rate, a whole frame, and the 32 kbit measured to work."""
    return max(math.ceil(rate / HZ), frame, MIN_BURST)


def netem_limit(spec: Spec, frame: int) -> int:
    """Packets in flight over the delay plus a full queue, doubled for packets below full size: the
    default of 1000 silently drops at high rate x delay."""
    queued = spec.rate * (spec.delay_ms + spec.queue_ms) / 1000 + burst_bytes(spec.rate, frame)
    return max(NETEM_DEFAULT_LIMIT, math.ceil(2 * queued / frame))


def _number(value: float) -> str:
    return f"{value:g}"


def _netem(spec: Spec, handle: str, parent: str, frame: int) -> Qdisc:
    args: list[str] = []
    expect: list[tuple[str, float]] = []
    if spec.delay_ms:
        args += ["delay", f"{_number(spec.delay_ms)}ms"]
    if spec.loss_percent:
        args += ["loss", f"{_number(spec.loss_percent)}%"]
    limit = netem_limit(spec, frame)
    args += ["limit", str(limit)]
    expect += [("delay", spec.delay_ms / 1000), ("loss", spec.loss_percent / 100), ("limit", limit)]
    return Qdisc("netem", handle, parent, tuple(args), tuple(expect))


def plan_tree(spec: Spec, direction: str, mtu: int) -> Tree:
    """The qdiscs, classes and filters that give ``spec`` on one device; ``direction`` is the address
    field peers are matched on: dst leaving the device, src arriving (on the ifb)."""
    frame = frame_bytes(mtu)
    burst = spec.burst or burst_bytes(spec.rate, frame)
    queue = math.ceil(spec.rate * spec.queue_ms / 1000) + burst
    root = spec.root
    if not spec.peers:
        tbf = Qdisc(
            "tbf",
            root,
            "root",
            ("rate", f"{spec.rate}bps", "burst", str(burst), "latency", f"{_number(spec.queue_ms)}ms"),
            (("rate", spec.rate), ("burst", burst), ("lat", spec.queue_ms / 1000)),
        )
        child = f"{spec.major + 1:x}:"
        return Tree((tbf, _netem(spec, child, f"{spec.major:x}:1", frame)) if spec.netem else (tbf,))
    qdiscs = [Qdisc("htb", root, "root", (), ())]
    classes, matches = [], []
    for number, peer in enumerate(spec.peers, start=1):
        classid = f"{spec.major:x}:{number:x}"
        rate = f"{spec.rate}bps"
        args = ("rate", rate, "ceil", rate, "burst", str(burst), "cburst", str(burst), "quantum", str(frame))
        classes.append(HtbClass(classid, spec.rate, args))
        leaf = f"{spec.major + number:x}:"
        if spec.netem:
            qdiscs.append(_netem(spec, leaf, classid, frame))
        else:
            qdiscs.append(Qdisc("bfifo", leaf, classid, ("limit", str(queue)), (("limit", queue),)))
        network = str(ipaddress.IPv4Network(peer, strict=False))
        matches.append(Match(classid, network, direction))
    return Tree(tuple(qdiscs), tuple(classes), tuple(matches))


def _qdisc_command(verb: str, qdisc: Qdisc, device: str) -> list[str]:
    place = ["root"] if qdisc.parent == "root" else ["parent", qdisc.parent]
    return ["tc", "qdisc", verb, "dev", device, *place, "handle", qdisc.handle, qdisc.kind, *qdisc.args]


def _class_command(verb: str, cls: HtbClass, device: str, root: str) -> list[str]:
    return ["tc", "class", verb, "dev", device, "parent", root, "classid", cls.classid, "htb", *cls.args]


def build_commands(tree: Tree, device: str) -> list[list[str]]:
    """Root first, then classes, leaves and filters: each command needs the one before it."""
    root, *leaves = tree.qdiscs
    commands = [_qdisc_command("add", root, device)]
    commands += [_class_command("add", cls, device, root.handle) for cls in tree.classes]
    commands += [_qdisc_command("add", qdisc, device) for qdisc in leaves]
    for match in tree.matches:
        commands.append(["tc", "filter", "add", "dev", device, "parent", root.handle, "protocol", "ip", "prio", "1"])
        commands[-1] += ["u32", "match", "ip", match.direction, match.network, "flowid", match.flowid]
    return commands


# Reading what is there


def _json(run: Run, argv: list[str], host: str) -> list:
    rc, out, err = run(argv)
    if rc != 0:
        raise ShapingError(f"{shlex.join(argv)} failed on {host}: {err.strip() or out.strip()}")
    return json.loads(out) if out.strip() else []


def link(run: Run, device: str) -> dict | None:
    """The device as ``ip -j link`` shows it (mtu, flags), or None where there is no such device."""
    rc, out, _ = run(["ip", "-j", "link", "show", "dev", device])
    links = json.loads(out) if rc == 0 and out.strip() else []
    return links[0] if links else None


_UNITS = {
    **{unit: 1000**power / 8 for power, unit in enumerate(("bit", "kbit", "mbit", "gbit", "tbit"))},
    **{unit: 1024**power / 8 for power, unit in enumerate(("kibit", "mibit", "gibit", "tibit"), start=1)},
    **{unit: 1024**power for power, unit in enumerate(("b", "kb", "mb", "gb"))},
    **{"s": 1.0, "ms": 1e-3, "us": 1e-6, "%": 0.01},
}
"""Units tc prints in: rates to bytes per second, sizes to bytes (1024-based), times to seconds,
percentages to fractions."""
_QUANTITY = re.compile(r"^([0-9.]+)([a-z%]*)$", re.IGNORECASE)
_SCALE = {"lat": 1e-6}
"""Plain numbers tc -j prints in other units than ours: tbf's latency in microseconds."""


def _quantity(value, name: str = "") -> float | None:
    """A number from tc's output, plain (newer tc -j) or with a unit (older tc, and tc class show)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value * _SCALE.get(name, 1)
    found = _QUANTITY.match(str(value).strip())
    if not found or found.group(2).lower() not in _UNITS:
        return None
    return float(found.group(1)) * _UNITS[found.group(2).lower()]


@dataclass
class Observed:
    """What one device carries: every qdisc, and the classes and filters under our root."""

    qdiscs: list
    classes: list
    filters: list

    def root(self) -> dict | None:
        return next((q for q in self.qdiscs if q.get("root")), None)


def observe(run: Run, device: str, spec: Spec, host: str) -> Observed:
    """Read one device. tc -j prints no classes (iproute2 6.1), so htb classes come from text."""
    qdiscs = _json(run, ["tc", "-j", "qdisc", "show", "dev", device], host)
    root = Observed(qdiscs, [], []).root()
    if not root or root.get("handle") != spec.root:
        return Observed(qdiscs, [], [])
    argv = ["tc", "class", "show", "dev", device]
    rc, out, err = run(argv)
    if rc != 0:
        raise ShapingError(f"{shlex.join(argv)} failed on {host}: {err.strip()}")
    classes = []
    for line in out.splitlines():
        found = _CLASS_LINE.match(line)
        if found and found.group(2).startswith(spec.root):
            rate, ceil = _quantity(found.group(3)), _quantity(found.group(4))
            classes.append({"kind": found.group(1), "classid": found.group(2), "rate": rate, "ceil": ceil})
    filters = _json(run, ["tc", "-j", "filter", "show", "dev", device, "parent", spec.root], host)
    return Observed(qdiscs, classes, filters)


def _close(wanted: float, seen: float | None, name: str = "") -> bool:
    """tc prints rates to four digits, sizes to 16 bytes, times to a tenth of their unit: equal within
    0.2%, latencies within 5% (tbf's is derived from a limit and printed coarsest)."""
    tolerance = 0.05 if name == "lat" else 0.002
    return seen is not None and math.isclose(wanted, seen, rel_tol=tolerance, abs_tol=1e-6)


def _seen_options(qdisc: dict) -> dict:
    options = qdisc.get("options", {})
    if qdisc.get("kind") == "netem":
        options = {
            "limit": options.get("limit"),
            "delay": options.get("delay", {}).get("delay", 0),
            "loss": options.get("loss-random", {}).get("loss", 0),
        }
    return {name: _quantity(value, name) for name, value in options.items()}


def _seen_matches(filters: list) -> set:
    seen = set()
    for entry in filters:
        options = entry.get("options", {})
        if "match" in options:
            match = options["match"]
            key = (options.get("flowid"), int(match["value"], 16), int(match["mask"], 16), int(match["off"]))
            seen.add(key)
    return seen


def _ours(tree: Tree, observed: Observed, spec: Spec) -> dict[str, dict]:
    """The device's qdiscs under our root, by handle; empty where two share a handle, which no tree
    of ours has, so such a device is rebuilt."""
    handles = {q.handle for q in tree.qdiscs}
    seen = [
        q
        for q in observed.qdiscs
        if q.get("handle") in handles or (q.get("parent", "").startswith(spec.root) and not q.get("root"))
    ]
    by_handle = {q.get("handle"): q for q in seen}
    return by_handle if len(by_handle) == len(seen) else {}


def same_layout(tree: Tree, observed: Observed, spec: Spec) -> bool:
    """Whether the device carries ``tree``'s qdiscs (kind and place), classes and filters, whatever
    their rates: what a change of rate keeps, so it is changed in place rather than rebuilt."""
    by_handle = _ours(tree, observed, spec)
    if set(by_handle) != {q.handle for q in tree.qdiscs}:
        return False
    for wanted in tree.qdiscs:
        got = by_handle[wanted.handle]
        parent = "root" if got.get("root") else got.get("parent")
        if got.get("kind") != wanted.kind or parent != wanted.parent:
            return False
    if {c["classid"] for c in observed.classes} != {c.classid for c in tree.classes}:
        return False
    return _seen_matches(observed.filters) == {m.key() for m in tree.matches}


def differing(tree: Tree, observed: Observed, spec: Spec) -> tuple[list[Qdisc], list[HtbClass]]:
    """The qdiscs and classes of ``tree`` that the device, laid out alike, shows with other options."""
    by_handle = _ours(tree, observed, spec)
    qdiscs = [
        wanted
        for wanted in tree.qdiscs
        if not all(
            _close(value, _seen_options(by_handle[wanted.handle]).get(name), name) for name, value in wanted.expect
        )
    ]
    seen = {c["classid"]: (c["rate"], c["ceil"]) for c in observed.classes}
    classes = [c for c in tree.classes if not all(_close(c.rate, value) for value in seen[c.classid])]
    return qdiscs, classes


def change_commands(tree: Tree, observed: Observed, spec: Spec, device: str) -> list[list[str]]:
    """``tc class change`` and ``tc qdisc change`` for what differs on a device of the same layout:
    a sweep's next rate reaches the kernel without a moment unshaped or a packet dropped with the tree."""
    qdiscs, classes = differing(tree, observed, spec)
    commands = [_class_command("change", cls, device, spec.root) for cls in classes]
    return commands + [_qdisc_command("change", qdisc, device) for qdisc in qdiscs]


# What the kernel can do


def _probe_step(run: Run, argv: list[str], what: str, host: str) -> bool:
    rc, _, err = run(argv)
    if rc == 0:
        return True
    if _MISSING.search(err):
        return False
    raise ShapingError(f"probing for {what} on {host} failed: {shlex.join(argv)}: {err.strip()}")


def probe(run: Run, host: str, device: str) -> Kernel:
    """Try each qdisc, classifier and action on a throwaway device, then remove it: tc has no way to
    list what the kernel has, and trying on the real device would replace its root qdisc."""
    rc, _, err = run(["tc", "-V"])
    if rc != 0:
        raise ShapingError(f"tc (iproute2) is not installed on {host}: {err.strip()}")
    errors = []
    for link_type in (["ifb"], ["dummy"], ["veth", "peer", "name", f"{device[:14]}p"]):
        rc, _, err = run(["ip", "link", "add", device, "type", *link_type])
        if rc == 0:
            break
        errors.append(f"{link_type[0]}: {err.strip()}")
    else:
        raise ShapingError(f"cannot create a throwaway device to probe tc on {host}: {'; '.join(errors)}")
    ifb = link_type == ["ifb"]
    try:
        qdiscs, classifiers = set(), set()
        steps = (
            ("tbf", ["root", "handle", "1:", "tbf", "rate", "1mbit", "burst", "4kb", "latency", "10ms"]),
            ("htb", ["root", "handle", "2:", "htb"]),
            ("bfifo", ["root", "handle", "3:", "bfifo", "limit", "3000"]),
            ("netem", ["root", "handle", "4:", "netem"]),
        )
        for name, args in steps:
            if _probe_step(run, ["tc", "qdisc", "replace", "dev", device, *args], f"the {name} qdisc", host):
                qdiscs.add(name)
            if name == "htb" and "htb" in qdiscs:
                u32 = ["tc", "filter", "add", "dev", device, "parent", "2:", "protocol", "ip", "prio", "1", "u32"]
                if _probe_step(run, [*u32, "match", "ip", "dst", "192.0.2.1/32", "flowid", "2:1"], "u32", host):
                    classifiers.add("u32")
        if _probe_step(run, ["tc", "qdisc", "add", "dev", device, "handle", INGRESS, "ingress"], "ingress", host):
            qdiscs.add("ingress")
            if "u32" in classifiers:
                redirect = ["tc", "filter", "add", "dev", device, "parent", INGRESS, "protocol", "ip", "prio", "1"]
                redirect += ["u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", device]
                if _probe_step(run, redirect, "the mirred action", host):
                    classifiers.add("mirred")
    finally:
        run(["ip", "link", "del", "dev", device])
    return Kernel(frozenset(qdiscs), frozenset(classifiers), ifb)


def check_kernel(spec: Spec, kernel: Kernel, host: str) -> None:
    """Refuse, naming what is missing, anything the kernel cannot give: never shape half of it."""
    peers = ", ".join(spec.peers)
    redirect = "incoming traffic cannot be redirected to an ifb device"
    needs = (
        [
            ("htb", "htb qdisc (sch_htb)", f"the rate to peers {peers} cannot be shaped"),
            (
                "u32",
                "u32 classifier (cls_u32)",
                f"traffic to peers {peers} cannot be told apart from the rest "
                f"(leave the peers out to shape everything leaving {spec.device})",
            ),
        ]
        if spec.peers
        else [("tbf", "tbf qdisc (sch_tbf)", "the rate cannot be shaped")]
    )
    if spec.netem:
        needs.append(("netem", "netem qdisc (sch_netem)", "delay and loss cannot be shaped"))
    if spec.ingress:
        needs += [
            ("ifb", "ifb device (ifb module)", "incoming traffic cannot be shaped"),
            ("ingress", "ingress qdisc (sch_ingress)", "incoming traffic cannot be shaped"),
            ("u32", "u32 classifier (cls_u32)", redirect),
            ("mirred", "mirred action (act_mirred)", redirect),
        ]
    have = kernel.qdiscs | kernel.classifiers | ({"ifb"} if kernel.ifb else set())
    for name, what, consequence in needs:
        if name not in have:
            raise ShapingError(f"this kernel has no {what}: {consequence} on {host} (device {spec.device})")


# Planning the changes


def _site_commands(spec: Spec, device: str, tree: Tree | None, observed: Observed, host: str) -> list[list[str]]:
    """Commands that bring one device's root to ``tree`` (None: remove ours), never touching a root
    qdisc someone else added."""
    root = observed.root()
    ours = root is not None and root.get("handle") == spec.root
    foreign = root is not None and not ours and root.get("handle") not in ("0:", None)
    delete = [["tc", "qdisc", "del", "dev", device, "root", "handle", spec.root]] if ours else []
    if tree is None:
        return delete
    if foreign:
        raise ShapingError(
            f"{device} on {host} already has a root qdisc {root.get('kind')} {root.get('handle')} that this module "
            f"did not add: remove it (tc qdisc del dev {device} root) or shape another device"
        )
    if ours and same_layout(tree, observed, spec):
        return change_commands(tree, observed, spec, device)
    return delete + build_commands(tree, device)


def _redirect(spec: Spec) -> list[str]:
    return [
        *("tc", "filter", "add", "dev", spec.device, "parent", INGRESS, "protocol", "all", "prio", str(spec.major)),
        *("u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", spec.ifb),
    ]


def _is_redirect(entry: dict, spec: Spec) -> bool:
    options = entry.get("options", {})
    actions = options.get("actions", [])
    return (
        entry.get("pref") == spec.major
        and options.get("match", {}).get("mask") == "0"
        and len(actions) == 1
        and actions[0].get("kind") == "mirred"
        and actions[0].get("mirred_action") == "redirect"
        and actions[0].get("to_dev") == spec.ifb
    )


def _ingress_commands(spec: Spec, device_qdiscs: list, mtu: int, run: Run, host: str) -> list[list[str]]:
    """Commands for the ifb, the ingress qdisc and the redirect filter: to ``spec`` when it asks for
    ingress, otherwise removing ours (the ingress qdisc too where nothing else hangs on it)."""
    ingress = next((q for q in device_qdiscs if q.get("parent", "").startswith("ffff:")), None)
    filters = _json(run, ["tc", "-j", "filter", "show", "dev", spec.device, "parent", INGRESS], host) if ingress else []
    ours = [f for f in filters if f.get("pref") == spec.major]
    others = [f for f in filters if f.get("pref") != spec.major]
    unfilter = [["tc", "filter", "del", "dev", spec.device, "parent", INGRESS, "prio", str(spec.major)]] if ours else []
    ifb = link(run, spec.ifb)
    ifb_up = None if ifb is None else "UP" in ifb.get("flags", [])
    wanted = spec.state == "present" and spec.ingress
    if not wanted:
        commands = unfilter
        if ours and not others:
            commands = [*commands, ["tc", "qdisc", "del", "dev", spec.device, "handle", INGRESS, "ingress"]]
        if ifb_up is not None:
            commands = [*commands, ["ip", "link", "del", "dev", spec.ifb]]
        return commands
    if ingress is not None and ingress.get("kind") != "ingress":
        raise ShapingError(
            f"{spec.device} on {host} has a {ingress.get('kind')} qdisc on its ingress that this module did not "
            "add: incoming traffic cannot be redirected to an ifb device next to it"
        )
    commands = []
    if ifb_up is None:
        commands.append(["ip", "link", "add", spec.ifb, "type", "ifb"])
    if not ifb_up:
        commands.append(["ip", "link", "set", "dev", spec.ifb, "up"])
    empty = Observed([], [], [])
    observed = observe(run, spec.ifb, spec, host) if ifb_up is not None else empty
    commands += _site_commands(spec, spec.ifb, plan_tree(spec, "src", mtu), observed, host)
    if ingress is None:
        commands.append(["tc", "qdisc", "add", "dev", spec.device, "handle", INGRESS, "ingress"])
    redirects = [f for f in ours if "match" in f.get("options", {})]
    if not (len(redirects) == 1 and _is_redirect(redirects[0], spec)):
        commands += [*unfilter, _redirect(spec)]
    return commands


def _offloads(spec: Spec, run: Run) -> tuple[dict, list[list[str]]]:
    """Segmentation offloads still on, and the ethtool command that turns them off."""
    rc, _, _ = run(["ethtool", "--version"])
    if rc != 0:
        return {"ethtool": False, "off": [], "on": []}, []
    rc, out, _ = run(["ethtool", "-k", spec.device])
    features = dict(line.strip().split(": ", 1) for line in out.splitlines() if ": " in line) if rc == 0 else {}
    wanted = ["gso", "tso", "gro"] if spec.ingress else ["gso", "tso"]
    state = {name: features.get(OFFLOADS[name], "off").split()[0] for name in wanted}
    fixed = {name for name in wanted if "[fixed]" in features.get(OFFLOADS[name], "")}
    change = [name for name in wanted if state[name] == "on" and name not in fixed]
    off = sorted(name for name in wanted if state[name] == "off" or name in change)
    report = {"ethtool": True, "off": off, "on": sorted(set(wanted) - set(off))}
    command = ["ethtool", "-K", spec.device]
    for name in change:
        command += [name, "off"]
    return report, [command] if change else []


def _read_back(run: Run, spec: Spec, host: str) -> dict:
    """What the kernel shows after the change, on the device and its ifb: every qdisc, and the htb
    classes under our root, which hold the rates (tc -j prints no classes)."""
    devices = [spec.device, *([spec.ifb] if link(run, spec.ifb) is not None else [])]
    seen = {device: observe(run, device, spec, host) for device in devices}
    return {
        "applied": {device: observed.qdiscs for device, observed in seen.items()},
        "classes": {device: observed.classes for device, observed in seen.items()},
    }


def shape(spec: Spec, run: Run, *, check_mode: bool = False, host: str = "localhost", probe_device: str = "") -> dict:
    """Bring the device to ``spec`` and report what was (or in check mode would be) run."""
    device = link(run, spec.device)
    nothing = {"qdiscs_available": [], "classifiers_available": [], "offloads": {"ethtool": False, "off": [], "on": []}}
    if spec.state == "absent" and device is None:
        return {"changed": False, "commands": [], "applied": {}, "classes": {}, **nothing}
    if device is None:
        raise ShapingError(f"there is no network device {spec.device} on {host}")
    mtu = int(device.get("mtu", 1500))
    result = dict(nothing)
    commands: list[list[str]] = []
    device_qdiscs = _json(run, ["tc", "-j", "qdisc", "show", "dev", spec.device], host)
    if spec.state == "present":
        kernel = probe(run, host, probe_device or f"tcprobe{os.getpid() % 100000}")
        result["qdiscs_available"] = sorted(kernel.qdiscs)
        result["classifiers_available"] = sorted(kernel.classifiers)
        check_kernel(spec, kernel, host)
        observed = observe(run, spec.device, spec, host)
        commands += _site_commands(spec, spec.device, plan_tree(spec, "dst", mtu), observed, host)
        result["offloads"], offload_commands = _offloads(spec, run)
        commands += offload_commands
    else:
        commands += _site_commands(spec, spec.device, None, Observed(device_qdiscs, [], []), host)
    commands += _ingress_commands(spec, device_qdiscs, mtu, run, host)
    if not check_mode:
        for argv in commands:
            rc, out, err = run(argv)
            if rc != 0:
                raise ShapingError(f"{shlex.join(argv)} failed on {host}: {err.strip() or out.strip()}")
    result.update(changed=bool(commands), commands=[shlex.join(argv) for argv in commands])
    result.update(_read_back(run, spec, host))
    return result


def main() -> None:
    # Imported here, not at the top: importing it patches sys.intern for the whole process, which
    # breaks torch in a test session that loads this file only for its pure functions.
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "device": {"type": "str", "required": True},
            "rate": {"type": "int"},
            "delay_ms": {"type": "float", "default": 0},
            "loss_percent": {"type": "float", "default": 0},
            "peers": {"type": "list", "elements": "str", "default": []},
            "ingress": {"type": "bool", "default": False},
            "burst": {"type": "int", "default": 0},
            "queue_ms": {"type": "float", "default": 1000},
            "handle": {"type": "str", "default": DEFAULT_HANDLE},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        required_if=[("state", "present", ["rate"])],
        supports_check_mode=True,
    )
    params = module.params

    def run(argv: list[str]) -> tuple[int, str, str]:
        if module.get_bin_path(argv[0]) is None:
            return 127, "", f"{argv[0]}: command not found"
        return module.run_command(argv)

    host = platform.node()
    try:
        spec = Spec(
            device=params["device"],
            rate=params["rate"] or 0,
            delay_ms=params["delay_ms"],
            loss_percent=params["loss_percent"],
            peers=tuple(params["peers"]),
            ingress=params["ingress"],
            burst=params["burst"],
            queue_ms=params["queue_ms"],
            handle=params["handle"],
            state=params["state"],
        )
        result = shape(spec, run, check_mode=module.check_mode, host=host)
    except ShapingError as error:
        module.fail_json(msg=str(error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
