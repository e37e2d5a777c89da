"""Each ordered pair of lab hosts shaped on its own, and changed or cut while the lab runs.

Traffic from ``src`` to ``dst`` leaves the bridge through ``dst``'s port (the bridge's end of its
veth link), so an htb on that port with a class per sender shapes every ordered pair apart from the
others. The hosts' own ``eth0`` is left alone: the sweep's ``link_shaping`` role owns its root qdisc.
Packets nothing classifies (the observer's, and pairs without a rate) go straight through unshaped.

A rate is TCP payload goodput, as a manifest's rate is: tc counts whole frames, 1514 bytes for the
1448 of payload a full segment carries, so the class gets the rate times 1514/1448, and a burst of
two frames or a millisecond at the rate, whichever is more, as ``playbooks/phases/shape.yml`` gives
``link_shaping``. The hosts' devices send one segment per packet (``network.no_super_packets``), so
htb never passes a 64 KB GSO packet whole (measured: a transfer's packets reach the port 1511
bytes long on average). Each class queues a second at its rate before it drops, as ``harness_tc`` does.

tc's drop action (act_gact) is missing from some kernels, so a cut pair is sent to a class whose
queue holds no byte instead: each of its packets is dropped on arrival. On each port, with ``i`` a host's place in the
spec (its numbers stay put whatever else changes, so one pair changes without touching another):

    qdisc 1: htb                      class 1:1, leaf 2: bfifo limit 0       the cut
    class 1:{i+2}, leaf {i+3}: bfifo  sender i's rate
    u32 filter prio 2i+1              sender i to 1:1 while the pair is cut (before its rate)
    u32 filter prio 2i+2              sender i to its class while the pair is shaped

A port gets its htb when a pair to it is first shaped or cut, so a lab that shapes nothing needs
neither htb nor u32. After every change each port changed is read back from tc and compared with
what was asked; the lab's state records the pairs once they read back right, and ``lab down``
removes the qdiscs with the bridge's namespace.
"""

import contextlib
import fcntl
import ipaddress
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.errors import BadInput
from harness.lab import system
from harness.lab.spec import HostSpec, LabSpec
from harness.lab.state import LabState, PairState
from harness.lab.status import check_lab_up
from harness.lab.system import LabError

FRAME = 1514
"""Bytes tc counts for a full-size TCP segment: 1448 of payload, headers and the Ethernet header."""
PAYLOAD = 1448
ROOT = "1:"
CUT_CLASS = "1:1"
CUT_LEAF = "2:"
CUT_RATE = FRAME
"""The cut class's rate never matters (its queue takes no packet); htb still needs one."""
QUEUE_S = 1.0
_CLASS_LINE = re.compile(r"^class htb (\S+) .*?\brate (\S+) ceil (\S+)")
_BITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12}
_SRC_OFFSET = 12
"""Where u32's ``match ip src`` looks: the source address, 12 bytes into the IPv4 header."""


def tc_rate(rate: float) -> int:
    """Bytes per second of frames that carry ``rate`` bytes per second of TCP payload."""
    return math.ceil(rate * FRAME / PAYLOAD)


def burst(rate: float) -> int:
    """Two frames, or a millisecond at the rate where that is more: a larger bucket lets a message
    arrive early by its time at the rate, a smaller one cannot reach the rate."""
    return max(2 * FRAME, int(rate) // 1000)


def queue(rate: float) -> int:
    return math.ceil(tc_rate(rate) * QUEUE_S) + burst(rate)


def _numbers(spec: LabSpec, src: str) -> tuple[str, str, int, int]:
    """The sender's class, its leaf's handle, and the priorities of its cut and rate filters."""
    index = [host.name for host in spec.hosts].index(src)
    return f"1:{index + 2:x}", f"{index + 3:x}:", 2 * index + 1, 2 * index + 2


def _host(spec: LabSpec, name: str) -> HostSpec:
    return next(host for host in spec.hosts if host.name == name)


# What tc is told


def _tc(spec: LabSpec) -> list[str]:
    return ["tc", "-n", spec.bridge_namespace]


def _class(spec: LabSpec, dst: str, classid: str, rate: int, bucket: int) -> list[str]:
    device = spec.port(_host(spec, dst))
    shape = ["rate", f"{rate}bps", "ceil", f"{rate}bps", "burst", str(bucket), "cburst", str(bucket)]
    shape += ["quantum", str(FRAME)]
    return [*_tc(spec), "class", "replace", "dev", device, "parent", ROOT, "classid", classid, "htb", *shape]


def _leaf(spec: LabSpec, dst: str, classid: str, handle: str, limit: int) -> list[str]:
    device = spec.port(_host(spec, dst))
    place = ["parent", classid, "handle", handle]
    return [*_tc(spec), "qdisc", "replace", "dev", device, *place, "bfifo", "limit", str(limit)]


def _filter(spec: LabSpec, pair: PairState, prio: int, flowid: str | None) -> list[str]:
    """Adds the filter sending the pair's packets to ``flowid``, or with None deletes it."""
    device = spec.port(_host(spec, pair.dst))
    head = [*_tc(spec), "filter", "add" if flowid else "del", "dev", device, "parent", ROOT, "prio", str(prio)]
    if flowid is None:
        return head
    source = spec.address(_host(spec, pair.src))
    return [*head, "protocol", "ip", "u32", "match", "ip", "src", f"{source}/32", "flowid", flowid]


def port_commands(spec: LabSpec, dst: str) -> list[list[str]]:
    """The htb on ``dst``'s port and its cut class."""
    device = spec.port(_host(spec, dst))
    return [
        [*_tc(spec), "qdisc", "add", "dev", device, "root", "handle", ROOT, "htb"],
        _class(spec, dst, CUT_CLASS, CUT_RATE, 2 * FRAME),
        _leaf(spec, dst, CUT_CLASS, CUT_LEAF, 0),
    ]


def pair_commands(spec: LabSpec, old: PairState, new: PairState) -> list[list[str]]:
    """What takes one pair from ``old`` to ``new``, touching no other pair's class or filters."""
    classid, leaf, cut_prio, rate_prio = _numbers(spec, new.src)
    commands = []
    if old.cut and not new.cut:
        commands.append(_filter(spec, new, cut_prio, None))
    if old.shaped and not new.shaped:
        device = spec.port(_host(spec, new.dst))
        commands += [
            _filter(spec, new, rate_prio, None),
            [*_tc(spec), "class", "del", "dev", device, "classid", classid],
        ]
    if new.shaped and new.rate != old.rate:
        commands += [
            _class(spec, new.dst, classid, tc_rate(new.rate), burst(new.rate)),
            _leaf(spec, new.dst, classid, leaf, queue(new.rate)),
        ]
        if not old.shaped:
            commands.append(_filter(spec, new, rate_prio, classid))
    if new.cut and not old.cut:
        commands.append(_filter(spec, new, cut_prio, CUT_CLASS))
    return commands


# What tc shows


@dataclass(frozen=True)
class PortView:
    """One port as tc shows it, in the terms the lab sets: the root qdisc, each class's rate and ceil
    (frame bytes per second), each class's leaf, and each filter priority's sender and class."""

    root: str
    classes: dict[str, tuple[float, float]]
    leaves: dict[str, str]
    filters: dict[int, tuple[str, str]]


def expected_port(spec: LabSpec, dst: str, pairs: dict[tuple[str, str], PairState]) -> PortView:
    classes = {CUT_CLASS: (float(CUT_RATE), float(CUT_RATE))}
    leaves = {CUT_CLASS: "bfifo limit 0"}
    filters = {}
    for (src, to), pair in pairs.items():
        if to != dst:
            continue
        classid, _, cut_prio, rate_prio = _numbers(spec, src)
        address = spec.address(_host(spec, src))
        if pair.shaped:
            classes[classid] = (float(tc_rate(pair.rate)), float(tc_rate(pair.rate)))
            leaves[classid] = f"bfifo limit {queue(pair.rate)}"
            filters[rate_prio] = (address, classid)
        if pair.cut:
            filters[cut_prio] = (address, CUT_CLASS)
    return PortView(f"htb {ROOT}", classes, leaves, filters)


def parse_port(qdiscs: list[dict[str, Any]], classes: str, filters: list[dict[str, Any]]) -> PortView:
    """From ``tc -j qdisc show``, ``tc class show`` (iproute2 6.1 prints htb classes only as text,
    even with -j, to four or five digits) and ``tc -j filter show``."""
    root = next((f"{q.get('kind')} {q.get('handle')}" for q in qdiscs if q.get("root")), "none")
    leaves = {
        q["parent"]: f"{q.get('kind')} limit {q.get('options', {}).get('limit')}"
        for q in qdiscs
        if not q.get("root") and "parent" in q
    }
    rates = {}
    for line in classes.splitlines():
        found = _CLASS_LINE.match(line.strip())
        if found:
            rates[found.group(1)] = (_bytes_per_s(found.group(2)), _bytes_per_s(found.group(3)))
    matches = {}
    for entry in filters:
        match = entry.get("options", {}).get("match")
        if match is not None:
            matches[entry["pref"]] = (_source(match), entry["options"].get("flowid", "none"))
    return PortView(root, rates, leaves, matches)


def _bytes_per_s(text: str) -> float:
    found = re.fullmatch(r"([0-9.]+)([a-z]*bit)", text, re.IGNORECASE)
    if not found or found.group(2).lower() not in _BITS:
        return math.nan
    return float(found.group(1)) * _BITS[found.group(2).lower()] / 8


def _source(match: dict[str, Any]) -> str:
    """The address a u32 key matches as a sender, or the key itself where it matches anything else."""
    value, mask, offset = match.get("value", ""), match.get("mask", ""), match.get("off")
    if mask == "ffffffff" and offset == _SRC_OFFSET:
        return str(ipaddress.IPv4Address(int(value, 16)))
    return f"u32 key {value}/{mask} at {offset}"


def differences(expected: PortView, seen: PortView) -> list[str]:
    """What ``seen`` has that ``expected`` has not, in words; rates equal within tc's printing (0.2%)."""
    problems = [] if seen.root == expected.root else [f"root qdisc {seen.root}, expected {expected.root}"]

    def rates_match(want: tuple[float, float], got: tuple[float, float]) -> bool:
        return all(math.isclose(a, b, rel_tol=0.002) for a, b in zip(want, got, strict=True))

    def rates_text(pair: tuple[float, float]) -> str:
        return f"rate {pair[0]:.0f} ceil {pair[1]:.0f} B/s"

    problems += _compare("class", expected.classes, seen.classes, rates_match, rates_text)
    problems += _compare("leaf of class", expected.leaves, seen.leaves)
    problems += _compare("filter prio", expected.filters, seen.filters, show=lambda f: f"{f[0]} to {f[1]}")
    return problems


def _compare(
    what: str,
    expected: dict,
    seen: dict,
    same: Callable[[Any, Any], bool] = lambda a, b: a == b,
    show: Callable[[Any], str] = str,
) -> list[str]:
    problems = []
    for key in sorted(expected.keys() | seen.keys()):
        want, got = expected.get(key), seen.get(key)
        if want is None or got is None or not same(want, got):
            shown = [show(value) if value is not None else "none" for value in (got, want)]
            problems.append(f"{what} {key}: {shown[0]}, expected {shown[1]}")
    return problems


def read_port(spec: LabSpec, dst: str) -> PortView:
    device = spec.port(_host(spec, dst))
    tc, where = _tc(spec), f"{spec.bridge_namespace}/{device}"
    qdiscs = json.loads(system.run([*tc, "-j", "qdisc", "show", "dev", device], f"read the qdiscs of {where}") or "[]")
    classes = system.run([*tc, "class", "show", "dev", device], f"read the classes of {where}")
    filters = json.loads(
        system.run([*tc, "-j", "filter", "show", "dev", device, "parent", ROOT], f"read the filters of {where}") or "[]"
    )
    return parse_port(qdiscs, classes, filters)


# Applying, recording, changing


def planned(spec: LabSpec) -> dict[tuple[str, str], PairState]:
    """Every ordered pair of the hosts the lab may shape, at the spec's rate."""
    return {
        (src.name, dst.name): PairState(src.name, dst.name, spec.link_rate(src.name, dst.name))
        for src in spec.shaped_hosts
        for dst in spec.shaped_hosts
        if src != dst
    }


def unshaped(spec: LabSpec) -> dict[tuple[str, str], PairState]:
    return {key: replace(pair, rate=math.inf) for key, pair in planned(spec).items()}


def apply_spec(spec: LabSpec, state: LabState) -> None:
    """At ``lab up``: the spec's rates on the bridge's ports of a lab that has none yet."""
    _apply(spec, state, unshaped(spec), planned(spec), set())


def _apply(
    spec: LabSpec,
    state: LabState,
    old: dict[tuple[str, str], PairState],
    new: dict[tuple[str, str], PairState],
    asked: set[tuple[str, str]],
) -> None:
    """Bring the ports to ``new``, one port at a time, each read back before the next; a port's
    pairs are recorded once they read back right (its htb as soon as it may exist), and ``asked``
    pairs' ports are read back even where nothing changes."""
    ports = state.shaped_ports
    applied = dict(old)
    for dst in [host.name for host in spec.shaped_hosts]:
        into = [key for key in new if key[1] == dst]
        commands = [] if dst in ports or all(new[key] == old[key] for key in into) else port_commands(spec, dst)
        for key in into:
            commands += pair_commands(spec, old[key], new[key])
        if not commands and not (dst in ports and any(key in asked for key in into)):
            continue
        ports = ports if dst in ports else [*ports, dst]
        try:
            for argv in commands:
                system.run(argv, f"shape the links to {dst}")
        finally:
            state.record_shaping(ports, [_record(spec, pair) for pair in applied.values()])
        problems = differences(expected_port(spec, dst, new), read_port(spec, dst))
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise LabError(
                f"the links to {dst} read back from tc ({spec.bridge_namespace}/{spec.port(_host(spec, dst))}) "
                f"differ from what was asked: {problems[0]}{more}; {state.path} keeps them as they were before"
            )
        applied.update({key: new[key] for key in into})
        state.record_shaping(ports, [_record(spec, pair) for pair in applied.values()])


def _record(spec: LabSpec, pair: PairState) -> dict[str, Any]:
    classid = _numbers(spec, pair.src)[0]
    return {
        "src": pair.src,
        "dst": pair.dst,
        "rate": pair.rate if pair.shaped else None,
        "cut": pair.cut,
        "device": f"{spec.bridge_namespace}/{spec.port(_host(spec, pair.dst))}",
        "class": classid if pair.shaped else None,
        "tc_rate": tc_rate(pair.rate) if pair.shaped else None,
        "burst": burst(pair.rate) if pair.shaped else None,
    }


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One change at a time: two would each apply their pairs over the other's record."""
    descriptor = os.open(state_dir, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _change(
    state_dir: Path, src: str, dst: str | None, change: Callable[[PairState, float], PairState]
) -> list[PairState]:
    """Apply ``change(pair, spec_rate)`` to the pair ``src`` -> ``dst``, or with no ``dst`` to every
    pair to and from ``src``; the pairs as read back."""
    system.require_root()
    system.tool("tc")
    state_dir = state_dir.absolute()
    check_lab_up(state_dir)
    with _locked(state_dir):
        state = LabState.load(state_dir)
        if state is None:
            raise BadInput(f"no lab recorded in {state_dir}")
        spec = state.spec()
        keys = _keys(spec, src, dst)
        old = unshaped(spec) | {(pair.src, pair.dst): pair for pair in state.pairs()}
        new = old | {key: change(old[key], spec.link_rate(*key)) for key in keys}
        _apply(spec, state, old, new, set(keys))
    return [new[key] for key in keys]


def _keys(spec: LabSpec, src: str, dst: str | None) -> list[tuple[str, str]]:
    names = [host.name for host in spec.shaped_hosts]
    for name in (src, dst):
        if name is not None and name not in names:
            observer = " (the observer's links are never shaped)" if name == spec.observer.name else ""
            raise BadInput(f"lab link: no host '{name}' to shape{observer}; expected one of {', '.join(names)}")
    if dst is None:
        return [(src, other) for other in names if other != src] + [(other, src) for other in names if other != src]
    if src == dst:
        raise BadInput(f"lab link {src} {dst}: expected two different hosts")
    return [(src, dst)]


def set_rate(state_dir: Path, src: str, dst: str, rate: float) -> list[PairState]:
    """Shape ``src`` -> ``dst`` to ``rate`` payload bytes per second (infinite: unshaped); a cut pair
    carries traffic again."""
    return _change(state_dir, src, dst, lambda pair, _: replace(pair, rate=rate, cut=False))


def cut(state_dir: Path, src: str, dst: str | None = None) -> list[PairState]:
    """Drop every packet from ``src`` to ``dst``, or without ``dst`` to and from ``src``; the
    controller in the observer still reaches every host. TCP needs both ways, so a connection
    from ``dst`` to ``src`` stalls too (its acknowledgements are dropped)."""
    return _change(state_dir, src, dst, lambda pair, _: replace(pair, cut=True))


def restore(state_dir: Path, src: str, dst: str | None = None) -> list[PairState]:
    """The pair (or every pair to and from ``src``) back at the spec's rate, carrying traffic."""
    return _change(state_dir, src, dst, lambda pair, spec_rate: replace(pair, rate=spec_rate, cut=False))
