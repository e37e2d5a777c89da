"""Real tc shaping by the link_shaping role's module, measured between two network namespaces.

Needs root, iproute2 and network namespaces; skipped elsewhere. The test makes a sender and a
receiver namespace joined by a veth pair, runs the module's functions through ``ip netns exec``
on the sender's end, and times 4 MB transfers with ``harness.shaping.measure``. Every packet stays
inside the two namespaces, and both are deleted afterwards, whatever happened.

The rate is a link-layer rate: the frames (the qdisc's byte counter) go at it, and since a full TCP
segment carries 1448 payload bytes in a 1514-byte frame, the payload arrives about 4.4% below it.
"""

import importlib.util
import json
import os
import select
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass

import pytest

from harness.shaping.measure import listen, receive, send
from tests.integration.conftest import REPO

MODULE_PATH = REPO / "roles" / "link_shaping" / "library" / "harness_tc.py"
_spec = importlib.util.spec_from_file_location("harness_tc", MODULE_PATH)
tc = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("harness_tc", tc)
_spec.loader.exec_module(tc)

RATE = 4_000_000
PAYLOAD = 4_000_000
GOODPUT = RATE * 1448 / 1514
"""What a link of RATE carries in full-size TCP segments (timestamps on): 4.4% below RATE."""
SENDER_ADDRESS, RECEIVER_ADDRESS, UNSHAPED_ADDRESS = "10.233.0.1", "10.233.0.2", "10.233.0.3"


def _ip(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=check, timeout=30)


@dataclass(frozen=True)
class Pair:
    """Two namespaces and the veth ends in them; ``device`` is the sender's end, the one shaped."""

    sender: str
    receiver: str
    device: str
    probe: str

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        """The module's ``run``, inside the sender's namespace."""
        done = subprocess.run(["ip", "netns", "exec", self.sender, *argv], capture_output=True, text=True, timeout=30)
        return done.returncode, done.stdout, done.stderr

    def shape(self, **spec) -> dict:
        return tc.shape(tc.Spec(device=self.device, **spec), self.run, host=self.sender, probe_device=self.probe)

    def qdiscs(self, device: str | None = None) -> list:
        code, out, err = self.run(["tc", "-s", "-j", "qdisc", "show", "dev", device or self.device])
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def pair():
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces and shape with tc")
    if shutil.which("ip") is None or shutil.which("tc") is None:
        pytest.skip("needs iproute2 (`ip` and `tc`)")
    pid = os.getpid()
    made = Pair(f"harness-tcs-{pid}", f"harness-tcr-{pid}", f"hs{pid}", f"hp{pid}")
    created = []
    try:
        for namespace in (made.sender, made.receiver):
            result = _ip("netns", "add", namespace, check=False)
            if result.returncode != 0:
                pytest.skip(f"cannot create a network namespace: {result.stderr.strip()}")
            created.append(namespace)
        peer = f"hr{pid}"
        _ip("-n", made.sender, "link", "add", made.device, "type", "veth", "peer", "name", peer, "netns", made.receiver)
        for namespace, device, addresses in (
            (made.sender, made.device, [SENDER_ADDRESS]),
            (made.receiver, peer, [RECEIVER_ADDRESS, UNSHAPED_ADDRESS]),
        ):
            for address in addresses:
                _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", device)
            _ip("-n", namespace, "link", "set", device, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
        yield made
    finally:
        for namespace in created:
            _ip("netns", "del", namespace, check=False)


def transfer(into: str, out_of: str, address: str, nbytes: int = PAYLOAD) -> dict:
    """Send ``nbytes`` from namespace ``out_of`` to a listener on ``address`` in namespace ``into``."""
    python = [sys.executable, "-m", "harness.shaping.measure"]
    listener = subprocess.Popen(
        ["ip", "netns", "exec", into, *python, "listen", "--bind", address], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        ready, _, _ = select.select([listener.stdout], [], [], 30)
        line = listener.stdout.readline() if ready else ""
        assert line.startswith("listening on "), f"the listener did not start: {line!r}"
        port = line.split()[3]
        sent = subprocess.run(
            ["ip", "netns", "exec", out_of, *python, "send", f"{address}:{port}", "--bytes", str(nbytes)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        assert listener.wait(30) == 0
        return json.loads(sent.stdout)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()


def check_rate(what: str, measured: dict, wire_bytes: int, rate: int = RATE) -> None:
    """The link layer (the qdisc's byte counter over the sender's time) goes at ``rate``, and the
    payload at what ``rate`` carries. Payload against the rate itself sits 4.4% low by the headers
    alone, so a 5% bound on it would fail on the first few milliseconds of scheduling delay."""
    link_rate = wire_bytes / measured["seconds"]
    goodput = rate * 1448 / 1514
    print(
        f"{what}: {measured['bytes']} B in {measured['seconds']:.3f} s: payload {measured['rate'] / 1e6:.3f} MB/s, "
        f"link layer {link_rate / 1e6:.3f} MB/s"
    )
    assert abs(link_rate - rate) / rate <= 0.05, (link_rate, measured)
    assert abs(measured["rate"] - goodput) / goodput <= 0.05, measured


def test_tbf_gives_the_rate_is_idempotent_and_comes_off_cleanly(pair):
    before = [{k: v for k, v in q.items() if k in ("kind", "handle", "root")} for q in pair.qdiscs()]
    applied = pair.shape(rate=RATE)
    assert applied["changed"] is True
    assert applied["commands"] == [
        f"tc qdisc add dev {pair.device} root handle 5150: tbf rate 4000000bps burst 16000 latency 1000ms"
    ]
    assert applied["applied"][pair.device][0]["options"] == {"rate": RATE, "burst": 16000, "lat": 1_000_000}
    measured = transfer(pair.receiver, pair.sender, RECEIVER_ADDRESS)
    (root,) = pair.qdiscs()
    check_rate("tbf 4 MB/s", measured, root["bytes"])
    assert root["drops"] == 0

    again = pair.shape(rate=RATE)
    assert (again["changed"], again["commands"]) == (False, [])

    removed = pair.shape(state="absent")
    assert removed["commands"] == [f"tc qdisc del dev {pair.device} root handle 5150:"]
    after = [{k: v for k, v in q.items() if k in ("kind", "handle", "root")} for q in pair.qdiscs()]
    assert after == before
    assert pair.shape(state="absent")["changed"] is False


def test_peers_shape_only_their_traffic(pair):
    applied = pair.shape(rate=RATE, peers=(RECEIVER_ADDRESS,))
    assert applied["commands"][0] == f"tc qdisc add dev {pair.device} root handle 5150: htb"
    shaped = transfer(pair.receiver, pair.sender, RECEIVER_ADDRESS)
    leaf = next(q for q in pair.qdiscs() if q["handle"] == "5151:")
    check_rate("htb 4 MB/s to the peer", shaped, leaf["bytes"])
    unshaped = transfer(pair.receiver, pair.sender, UNSHAPED_ADDRESS)
    print(f"htb, another address: {unshaped['rate'] / 1e6:.1f} MB/s payload")
    assert unshaped["rate"] > 3 * RATE, unshaped
    assert pair.shape(rate=RATE, peers=(RECEIVER_ADDRESS,))["commands"] == []
    pair.shape(state="absent")
    assert pair.qdiscs()[0]["handle"] == "0:"


def test_a_new_rate_is_changed_in_place_and_carried(pair):
    """A sweep's next link: the class and its queue change, the tree and its counters stay."""
    pair.shape(rate=RATE, peers=(RECEIVER_ADDRESS,))
    changed = pair.shape(rate=2 * RATE, peers=(RECEIVER_ADDRESS,))
    assert [command.split()[:3] for command in changed["commands"]] == [
        ["tc", "class", "change"],
        ["tc", "qdisc", "change"],
    ]
    assert changed["classes"][pair.device][0]["rate"] == pytest.approx(2 * RATE, rel=0.002)
    before = next(q for q in pair.qdiscs() if q["handle"] == "5151:")["bytes"]
    shaped = transfer(pair.receiver, pair.sender, RECEIVER_ADDRESS, 2 * PAYLOAD)
    leaf = next(q for q in pair.qdiscs() if q["handle"] == "5151:")
    check_rate("htb changed to 8 MB/s", shaped, leaf["bytes"] - before, 2 * RATE)
    assert pair.shape(rate=2 * RATE, peers=(RECEIVER_ADDRESS,))["commands"] == []
    pair.shape(state="absent")


def test_ingress_shapes_incoming_traffic_through_an_ifb(pair):
    applied = pair.shape(rate=RATE, ingress=True)
    ifb = f"ifb5150-{pair.device}"[:15]
    assert set(applied["applied"]) == {pair.device, ifb}
    measured = transfer(pair.sender, pair.receiver, SENDER_ADDRESS)
    (ifb_root,) = pair.qdiscs(ifb)
    check_rate("ingress 4 MB/s", measured, ifb_root["bytes"])
    assert pair.shape(rate=RATE, ingress=True)["commands"] == []
    removed = pair.shape(state="absent")
    assert removed["commands"][-1] == f"ip link del dev {ifb}"
    assert [q["kind"] for q in pair.qdiscs()] == ["noqueue"]
    assert pair.run(["ip", "link", "show", "dev", ifb])[0] != 0


def test_measure_counts_every_byte_over_loopback():
    with listen("127.0.0.1") as listener:
        receiver = threading.Thread(target=receive, args=(listener,))
        receiver.start()
        result = send("127.0.0.1", listener.getsockname()[1], 1_000_000)
        receiver.join(30)
    assert result.bytes == 1_000_000
    assert result.seconds > 0
    assert result.rate == result.bytes / result.seconds
