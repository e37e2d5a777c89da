"""Namespaces, the bridge and the veth links of the lab, made without touching the root namespace.

Each veth pair is created with both ends already inside lab namespaces (``ip link add ... netns``),
so no lab device or address ever appears in the root namespace and the machine has no route into
the lab: a packet for a lab address can only come from inside a lab namespace.
"""

import os
from pathlib import Path

from harness.lab.system import run

NETNS_DIR = Path("/run/netns")
BRIDGE_DEVICE = "br0"
HOST_DEVICE = "eth0"


def exists(namespace: str) -> bool:
    return (NETNS_DIR / namespace).exists()


def add_namespace(namespace: str) -> None:
    run(["ip", "netns", "add", namespace], f"create namespace {namespace}")


def loopback_up(namespace: str) -> None:
    """A new namespace's loopback is down: a service bound to 127.0.0.1 inside it would fail."""
    run(["ip", "-n", namespace, "link", "set", "lo", "up"], f"bring up lo in {namespace}")


def add_bridge(namespace: str) -> None:
    run(["ip", "-n", namespace, "link", "add", BRIDGE_DEVICE, "type", "bridge"], f"create bridge in {namespace}")
    run(["ip", "-n", namespace, "link", "set", BRIDGE_DEVICE, "up"], f"bring up bridge in {namespace}")


def add_link(namespace: str, bridge_namespace: str, port: str) -> None:
    """The pair ``eth0`` (in the host's namespace) and ``port`` (in the bridge's), both ends born there."""
    peer = ["peer", "name", port, "netns", bridge_namespace]
    run(
        ["ip", "link", "add", HOST_DEVICE, "netns", namespace, "type", "veth", *peer],
        f"create veth {namespace}/{HOST_DEVICE} - {bridge_namespace}/{port}",
    )


def attach(namespace: str, bridge_namespace: str, port: str, address: str, prefixlen: int) -> None:
    run(
        ["ip", "-n", bridge_namespace, "link", "set", port, "master", BRIDGE_DEVICE, "up"],
        f"attach {port} to the bridge in {bridge_namespace}",
    )
    run(
        ["ip", "-n", namespace, "addr", "add", f"{address}/{prefixlen}", "dev", HOST_DEVICE],
        f"give {namespace}/{HOST_DEVICE} address {address}",
    )
    run(["ip", "-n", namespace, "link", "set", HOST_DEVICE, "up"], f"bring up {namespace}/{HOST_DEVICE}")
    no_super_packets(namespace)


def no_super_packets(namespace: str) -> None:
    """One segment per packet on the host's device, as a real NIC under tc gets with ethtool's
    ``gso off tso off`` (not installed everywhere): a token bucket passes a 64 KB GSO packet whole,
    so the last one of a message would leave at line speed and the message arrive early."""
    run(
        ["ip", "-n", namespace, "link", "set", HOST_DEVICE, "gso_max_segs", "1"],
        f"limit {namespace}/{HOST_DEVICE} to one segment per packet",
    )


def delete_link(namespace: str, device: str) -> None:
    if exists(namespace) and device in devices(namespace):
        run(["ip", "-n", namespace, "link", "del", device], f"delete {namespace}/{device}")


def devices(namespace: str) -> list[str]:
    output = run(["ip", "-n", namespace, "-o", "link", "show"], f"list the links of {namespace}")
    return [line.split(":")[1].strip().split("@")[0] for line in output.splitlines() if ":" in line]


def delete_namespace(namespace: str) -> None:
    if exists(namespace):
        run(["ip", "netns", "del", namespace], f"delete namespace {namespace}")


def pids(namespace: str) -> list[int]:
    """Every process inside ``namespace``: started in the lab, so the lab may end them."""
    if not exists(namespace):
        return []
    output = run(["ip", "netns", "pids", namespace], f"list the processes in {namespace}")
    return [int(word) for word in output.split() if word.isdigit()]


def same_namespace(namespace: str) -> bool:
    """Whether this process runs inside ``namespace``."""
    try:
        here, there = os.stat("/proc/self/ns/net"), os.stat(NETNS_DIR / namespace)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
