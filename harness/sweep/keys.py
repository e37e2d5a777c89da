"""Fresh CurveZMQ keys for each sweep that leaves loopback, so no key outlives its sweep.

The worker's pair and the edge's pair are as ``harness keys gen`` makes them; the observer's pair
makes the controller's record stream a server that trusts the same edge keys. The observer is no
client of the worker, so its public key is taken out of ``clients/``.
"""

from pathlib import Path

from harness.wire.keys import CLIENTS, OBSERVER, generate

EDGE = "edge"
EDGE_FILES = (f"{EDGE}.key", f"{EDGE}.key_secret", "worker.key", f"{OBSERVER}.key")
CLOUD_FILES = ("worker.key", "worker.key_secret", f"{CLIENTS}/{EDGE}.key", f"{EDGE}.key", f"{EDGE}.key_secret")
"""What each host is sent: never the observer's secret, which stays with the controller. The cloud
host holds the edge pair too, since the worker role checks the worker by pinging it as the edge."""


def sweep_keys(directory: Path) -> Path:
    generate(directory, (EDGE, OBSERVER))
    (directory / CLIENTS / f"{OBSERVER}.key").unlink()
    return directory
