"""ZeroMQ sockets for the worker protocol, with CurveZMQ wherever traffic can leave the host.

The worker binds a ROUTER (many edge clients, replies routed back to each); a client connects a
DEALER (no lock-step, so a timed-out request does not wedge the socket). A worker bound to
anything but loopback refuses to start without keys, and with keys every client must present a
public key listed in the key directory's ``clients/``.
"""

import ipaddress
import re
from dataclasses import dataclass

import zmq
from zmq.auth.thread import ThreadAuthenticator

from harness.errors import BadInput
from harness.wire.frames import Limits
from harness.wire.keys import ClientKeys, WorkerKeys

_TCP = re.compile(r"^tcp://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.\-*]+):(\d+|\*)$")
_LOCAL_TRANSPORTS = ("ipc://", "inproc://")
AUTH_FAILURES = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


def check_endpoint(endpoint: str, what: str = "endpoint") -> str:
    """``endpoint`` if it is tcp://HOST:PORT, ipc://PATH or inproc://NAME; a clear error otherwise."""
    if endpoint.startswith(_LOCAL_TRANSPORTS) and len(endpoint) > len("ipc://"):
        return endpoint
    match = _TCP.match(endpoint)
    if not match or (match.group(2) != "*" and not 0 < int(match.group(2)) < 65536):
        raise BadInput(f"{what} '{endpoint}': expected tcp://HOST:PORT (port 1-65535), ipc://PATH or inproc://NAME")
    return endpoint


def is_loopback(endpoint: str) -> bool:
    """Whether traffic to or from ``endpoint`` stays on this host."""
    if endpoint.startswith(_LOCAL_TRANSPORTS):
        return True
    match = _TCP.match(endpoint)
    return loopback_address(match.group(1).strip("[]") if match else "")


def loopback_address(host: str) -> bool:
    """Whether ``host`` (a name or an IP address) is this host's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ServerSocket:
    """The worker's bound ROUTER and, with keys, the authenticator thread that vets clients."""

    socket: zmq.Socket
    endpoint: str
    authenticator: ThreadAuthenticator | None

    def close(self) -> None:
        self.socket.close(linger=0)
        if self.authenticator is not None:
            self.authenticator.stop()


def bind_server(context: zmq.Context, endpoint: str, keys: WorkerKeys | None, limits: Limits) -> ServerSocket:
    """A ROUTER bound to ``endpoint``; refuses off loopback without keys. ``endpoint`` may end in ``:*``."""
    check_endpoint(endpoint, "--bind")
    if keys is None and not is_loopback(endpoint):
        raise BadInput(
            f"refusing to bind {endpoint} without keys: off loopback every client must authenticate; "
            "make keys with `harness keys gen DIR` and pass --keys DIR"
        )
    authenticator = None
    socket = context.socket(zmq.ROUTER)
    socket.setsockopt(zmq.MAXMSGSIZE, limits.frame_bytes)
    socket.setsockopt(zmq.LINGER, 0)
    if keys is not None:
        authenticator = ThreadAuthenticator(context)
        authenticator.start()
        authenticator.configure_curve(domain="*", location=str(keys.clients))
        socket.curve_secretkey = keys.secret
        socket.curve_publickey = keys.public
        socket.curve_server = True
    try:
        socket.bind(endpoint)
    except zmq.ZMQError as error:
        socket.close(linger=0)
        if authenticator is not None:
            authenticator.stop()
        raise BadInput(f"cannot bind {endpoint}: {error}") from error
    return ServerSocket(socket, socket.getsockopt_string(zmq.LAST_ENDPOINT), authenticator)


def connect_client(
    context: zmq.Context, endpoint: str, keys: ClientKeys | None, limits: Limits, identity: bytes | None = None
) -> zmq.Socket:
    """A DEALER connected to a worker; off loopback it must have keys (the worker would ignore it).
    ``identity``: its routing id at the worker, for replies that another socket's request asked for."""
    check_endpoint(endpoint, "worker endpoint")
    if keys is None and not is_loopback(endpoint):
        raise BadInput(
            f"the worker at {endpoint} is off loopback and only accepts known keys: pass --keys DIR "
            "(holding this client's key pair and worker.key)"
        )
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.MAXMSGSIZE, limits.frame_bytes)
    socket.setsockopt(zmq.LINGER, 0)
    if identity is not None:
        socket.setsockopt(zmq.ROUTING_ID, identity)
    if keys is not None:
        socket.curve_secretkey = keys.secret
        socket.curve_publickey = keys.public
        socket.curve_serverkey = keys.server
    socket.connect(endpoint)
    return socket
