"""Fresh CurveZMQ keys for each sweep that leaves loopback, so no key outlives its sweep.

The worker's pair and the edge's pair are as ``harness keys gen`` makes them; the observer's pair
makes the controller's record stream a server that trusts the same edge keys. The observer is no
client of the worker, so its public key is taken out of ``clients/``.
"""

from pathlib import Path

from harness.errors import BadInput
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


def shipped_keys(directory: Path) -> dict:
    """The playbook variables that ship a ``harness keys gen`` directory for a phase run on its own
    (``harness provision/deploy --keys DIR``): the cloud's files, and the edge's that it holds."""
    missing = [name for name in CLOUD_FILES if not (directory / name).is_file()]
    if missing:
        raise BadInput(
            f"--keys {directory}: {', '.join(missing)} missing; expected a directory made by `harness keys gen`"
        )
    return {
        "harness_keys_source": str(directory.resolve()),
        "harness_keys_cloud_files": list(CLOUD_FILES),
        "harness_keys_edge_files": [name for name in EDGE_FILES if (directory / name).is_file()],
    }
