"""CurveZMQ keys: a pair for the worker, one per edge client, and the list a worker trusts.

A key directory made by ``harness keys gen DIR`` holds ``worker.key``/``worker.key_secret``, a pair
per client (``edge.key``/``edge.key_secret``) and ``clients/`` with the public key of every client
the worker accepts. A lab deploys the directory (or the parts each host needs); a client is
revoked by deleting its file from ``clients/``. A sweep across hosts adds an ``observer`` pair: the
controller's record stream is a server too, and trusts the same clients.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import zmq.auth

from harness.errors import BadInput

WORKER = "worker"
OBSERVER = "observer"
CLIENTS = "clients"


@dataclass(frozen=True)
class WorkerKeys:
    public: bytes
    secret: bytes
    clients: Path


@dataclass(frozen=True)
class ClientKeys:
    public: bytes
    secret: bytes
    server: bytes


def generate(directory: Path, clients: tuple[str, ...] = ("edge",)) -> list[Path]:
    """Create the worker's pair and one pair per client; never overwrites a key. Returns files made."""
    for name in (WORKER, *clients):
        if not name.isidentifier():
            raise BadInput(f"key name '{name}': expected letters, digits and underscores")
    (directory / CLIENTS).mkdir(parents=True, exist_ok=True)
    made = []
    for name in (WORKER, *clients):
        public = directory / f"{name}.key"
        if public.exists() or (directory / f"{name}.key_secret").exists():
            raise BadInput(f"{public} already exists; keys are never overwritten (remove it to make a new pair)")
        public_path, secret_path = zmq.auth.create_certificates(directory, name)
        os.chmod(secret_path, 0o600)
        made += [Path(public_path), Path(secret_path)]
        if name != WORKER:
            trusted = directory / CLIENTS / f"{name}.key"
            trusted.write_bytes(Path(public_path).read_bytes())
            made.append(trusted)
    return made


def worker_keys(directory: Path, server: str = WORKER) -> WorkerKeys:
    public, secret = _pair(directory, server)
    clients = directory / CLIENTS
    if not clients.is_dir() or not any(clients.glob("*.key")):
        raise BadInput(f"{clients}: no client public keys (*.key); the worker would accept no one")
    return WorkerKeys(public, secret, clients)


def client_keys(directory: Path, name: str = "edge", server: str = WORKER) -> ClientKeys:
    public, secret = _pair(directory, name)
    server_key = _read(directory / f"{server}.key", secret=False)[0]
    return ClientKeys(public, secret, server_key)


def _pair(directory: Path, name: str) -> tuple[bytes, bytes]:
    return _read(directory / f"{name}.key_secret", secret=True)


def _read(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise BadInput(f"{path} does not exist; make keys with `harness keys gen {path.parent}`")
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as error:
        raise BadInput(f"{path}: not a CurveZMQ certificate ({error})") from error
    if secret and secret_key is None:
        raise BadInput(f"{path}: holds no secret key")
    return public, secret_key
