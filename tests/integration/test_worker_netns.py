"""Off loopback, in a network namespace made by the test: only clients with a known key get in.

Needs root and ``ip netns``; skipped elsewhere. The worker binds a private address that exists only
inside the namespace, and every client runs inside it too, so no packet leaves the namespace.
"""

import os
import shutil
import subprocess
import sys

import pytest

from harness.wire.keys import generate
from tests.integration.conftest import REPO

ADDRESS = "10.231.0.1"
ENDPOINT = f"tcp://{ADDRESS}:5555"
NO_KEY_CLIENT = """
import sys, zmq
context = zmq.Context()
socket = context.socket(zmq.DEALER)
socket.setsockopt(zmq.LINGER, 0)
socket.connect(sys.argv[1])
socket.send(b'{"v":1,"kind":"ping","id":1}')
sys.exit(3 if socket.poll(2000) else 0)
"""


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)


@pytest.fixture
def namespace():
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2 (`ip`)")
    name = f"harness-test-{os.getpid()}"
    made = _run("ip", "netns", "add", name, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
    try:
        for command in (
            ("ip", "link", "set", "lo", "up"),
            ("ip", "link", "add", "harness0", "type", "veth", "peer", "name", "harness1"),
            ("ip", "addr", "add", f"{ADDRESS}/24", "dev", "harness0"),
            ("ip", "link", "set", "harness0", "up"),
            ("ip", "link", "set", "harness1", "up"),
        ):
            _run("ip", "netns", "exec", name, *command)
        yield name
    finally:
        _run("ip", "netns", "del", name, check=False)


def _in(namespace: str, *command: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def test_off_loopback_only_known_keys_are_served(namespace, tmp_path):
    keys, stranger = tmp_path / "keys", tmp_path / "stranger"
    generate(keys)
    generate(stranger)
    (stranger / "worker.key").write_bytes((keys / "worker.key").read_bytes())
    harness = ("-m", "harness.cli")
    refused = _in(namespace, *harness, "worker", "serve", "--bind", ENDPOINT)
    assert refused.returncode == 2
    assert refused.stderr.strip().startswith(f"harness: error: refusing to bind {ENDPOINT} without keys")
    command = ["ip", "netns", "exec", namespace, sys.executable, *harness, "worker", "serve", "--bind", ENDPOINT]
    worker = subprocess.Popen([*command, "--keys", str(keys)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().startswith(f"worker listening on {ENDPOINT}")
        no_keys = _in(namespace, *harness, "worker", "ping", ENDPOINT)
        assert no_keys.returncode == 2
        assert "is off loopback and only accepts known keys: pass --keys DIR" in no_keys.stderr
        assert _in(namespace, "-c", NO_KEY_CLIENT, ENDPOINT).returncode == 0
        unknown = _in(namespace, *harness, "worker", "ping", ENDPOINT, "--keys", str(stranger), "--timeout", "2")
        assert unknown.returncode == 1
        assert "rejected this client during the handshake" in unknown.stderr
        known = _in(namespace, *harness, "worker", "ping", ENDPOINT, "--keys", str(keys))
        assert known.returncode == 0, known.stderr
        assert "requests 1 (0 refused or failed), clients 1" in known.stdout
    finally:
        worker.terminate()
        assert worker.wait(10) == 0
