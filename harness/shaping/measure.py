"""The throughput a link actually gives: N bytes over one TCP connection, timed by the sender.

The sender's clock runs from its first byte to the receiver's confirmation that every byte
arrived, so bytes still sitting in the sender's socket buffer or in a shaper's queue are counted
(timing until ``sendall`` returns would not). Payload bytes are counted, as a message of that size
would see them; a shaper counts link-layer frames, so the goodput of a full-size TCP segment is
about 1448/1514 (4.4%) below the shaped rate.

Each side runs in its own process, usually in its own network namespace:

    python -m harness.shaping.measure listen --bind 10.0.0.2      # prints "listening on ADDR PORT"
    python -m harness.shaping.measure send 10.0.0.2:PORT --bytes 4000000
"""

import argparse
import json
import socket
import sys
import time
from dataclasses import asdict, dataclass

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Throughput:
    """One transfer: payload bytes, the sender's seconds, and the receiver's (first byte to last)."""

    bytes: int
    seconds: float
    receiver_seconds: float

    @property
    def rate(self) -> float:
        """Payload bytes per second as the sender saw them."""
        return self.bytes / self.seconds


def listen(address: str, port: int = 0) -> socket.socket:
    """A listener for one transfer; port 0 lets the kernel choose, so parallel runs never collide."""
    listener = socket.create_server((address, port))
    listener.settimeout(60)
    return listener


def receive(listener: socket.socket) -> tuple[int, float]:
    """Take one transfer to its end, confirm it to the sender, and return (bytes, seconds)."""
    connection, _ = listener.accept()
    with connection:
        connection.settimeout(60)
        buffer = bytearray(CHUNK)
        total, first = 0, None
        while count := connection.recv_into(buffer):
            first = first if first is not None else time.perf_counter()
            total += count
        seconds = time.perf_counter() - first if first is not None else 0.0
        connection.sendall(json.dumps({"bytes": total, "seconds": seconds}).encode() + b"\n")
    return total, seconds


def connect(address: str, port: int, timeout: float, wait: float) -> socket.socket:
    """A connection to the listener, retried for ``wait`` seconds while it is refused: a listener
    started at the same moment on another host may not be bound yet."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except ConnectionRefusedError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def send(address: str, port: int, nbytes: int, timeout: float = 60, wait: float = 0) -> Throughput:
    """Send ``nbytes`` and wait for the receiver's count; a short count is an error, not a rate."""
    payload = memoryview(bytes(CHUNK))
    with connect(address, port, timeout, wait) as connection:
        start = time.perf_counter()
        remaining = nbytes
        while remaining:
            sent = connection.send(payload[: min(remaining, CHUNK)])
            remaining -= sent
        connection.shutdown(socket.SHUT_WR)
        reply = connection.makefile("rb").readline()
        seconds = time.perf_counter() - start
    received = json.loads(reply) if reply else {"bytes": 0, "seconds": 0.0}
    if received["bytes"] != nbytes:
        raise ConnectionError(f"sent {nbytes} bytes to {address}:{port}, but the receiver got {received['bytes']}")
    return Throughput(nbytes, seconds, received["seconds"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.shaping.measure", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listening = commands.add_parser("listen", help="receive one transfer")
    listening.add_argument("--bind", required=True, help="address to listen on")
    listening.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    sending = commands.add_parser("send", help="send one transfer and print its throughput as JSON")
    sending.add_argument("to", help="ADDRESS:PORT of the listener")
    sending.add_argument("--bytes", type=int, default=4_000_000, help="payload to send (default 4 MB)")
    sending.add_argument("--wait", type=float, default=0, help="seconds to retry while the listener refuses")
    args = parser.parse_args(argv)
    if args.command == "listen":
        with listen(args.bind, args.port) as listener:
            print(f"listening on {args.bind} {listener.getsockname()[1]}", flush=True)
            total, seconds = receive(listener)
        print(json.dumps({"bytes": total, "seconds": seconds}), flush=True)
        return 0
    address, _, port = args.to.rpartition(":")
    result = send(address, int(port), args.bytes, wait=args.wait)
    print(json.dumps({**asdict(result), "rate": result.rate}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
