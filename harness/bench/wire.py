"""What a tensor's round trip over our wire codec costs, against raw bytes and a hand-rolled socket.

A client sends a float32 tensor, a server decodes it and sends the same tensor back, the client
decodes the echo. Three kinds of method are timed at each size:

- ``harness none|lz4|zstd``: our frames (JSON header validated by msgspec, then one buffer per
  tensor) over the worker's ROUTER/DEALER sockets, packed and unpacked as the edge and worker do.
- ``raw bytes``: the same sockets carrying the tensor's memory as one frame, echoed unchanged and
  never decoded. This is the floor: what ZeroMQ on loopback costs before our codec adds anything.
- ``pickle+blosc2 tcp``: what hand-rolled split-computing tools do: pickle, blosc2, length prefix,
  a plain TCP socket.

Each server runs in its own spawned process, so client and server do not take turns on one GIL
and the figures include the real hand-over between two processes, as between edge and worker.

At each size, raw bytes and our uncompressed path take turns in blocks (a few untimed round trips,
then a block of timed ones, then the other method), and their ratio is the target. Measured one
after the other instead, the two compared a machine minutes apart: on a shared 2-core machine the
raw floor alone moved from 320 to 460 us at 1 MB between runs. The compressing methods and pickle
then run back to back after a warm-up, away from the pair: blosc2's threads keep the cores busy
for a while after a large buffer, which would land on whichever method came next.
"""

import collections
import io
import itertools
import multiprocessing
import pickle
import re
import socket
import statistics
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from typing import ClassVar

import blosc2
import numpy as np
import torch
import zmq

from harness.errors import BadInput, ExperimentFailed
from harness.wire.compression import Compression
from harness.wire.frames import (
    CompressionSpec,
    Infer,
    Limits,
    ModelSpec,
    Result,
    Timings,
    decode_reply,
    decode_request,
    encode,
)
from harness.wire.sockets import bind_server, connect_client
from harness.wire.tensors import pack, unpack

TARGET_RATIO = 1.3
"""``harness none`` may cost at most this many times the raw-bytes round trip at the largest size."""

RAW = "raw bytes"
HARNESS_CODECS = ("none", "lz4", "zstd")
PICKLE = "pickle+blosc2 tcp"
METHODS = (RAW, *(f"harness {codec}" for codec in HARNESS_CODECS), PICKLE)
TARGET_METHOD = "harness none"
IN_TURNS = (RAW, TARGET_METHOD)
"""The methods the target compares, measured in turns."""
BLOCK = 20
"""Timed round trips of one method before the other's turn."""
BLOCK_WARMUP = 3
"""Untimed round trips at the start of each turn."""

_LOOPBACK = "127.0.0.1"
_UNITS = {"": 1, "k": 1024, "m": 1024 * 1024}
_SIZE = re.compile(r"(\d+)([km]?)")
_MAX_SIZE = 64 * 1024 * 1024
_STARTUP_S = 120.0
"""Spawned servers import torch afresh; on a loaded CI machine that alone can take tens of seconds."""
_STOP_LINGER_MS = 1000
_ECHO_TIMEOUT_S = 60
"""Long enough for a zstd round trip of the largest size allowed on a slow machine."""
_LENGTH = struct.Struct("!Q")
_NO_TIMINGS = Timings(decode_ns=0, compute_ns=0, encode_ns=0, busy_ns=0)
_MODEL = ModelSpec(name="bench", granularity="node", input_shape=(1,))


@dataclass(frozen=True)
class WireRow:
    """One method at one tensor size: round-trip latency and what one direction puts on the wire."""

    method: str
    size: int
    median_us: float
    p95_us: float
    wire_bytes: int
    ratio_to_raw: float


def parse_sizes(text: str) -> list[int]:
    """``4k,16k,1m`` as byte counts (k and m are binary: 1024 and 1024*1024)."""
    parts = [_SIZE.fullmatch(part.strip()) for part in text.lower().split(",")]
    sizes = [int(part.group(1)) * _UNITS[part.group(2)] for part in parts if part]
    if len(sizes) < len(parts) or any(size < 4 or size % 4 or size > _MAX_SIZE for size in sizes):
        raise BadInput(
            f"--sizes '{text}': expected comma-separated tensor sizes like 4k,16k,1m, each a multiple "
            f"of 4 bytes (float32) from 4 to {_MAX_SIZE // _UNITS['m']}m"
        )
    return sorted(set(sizes))


def size_label(size: int) -> str:
    """A byte count in the notation ``--sizes`` takes: 4k, 1m, or plain bytes."""
    for unit in ("m", "k"):
        if size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)


def target_row(rows: list[WireRow]) -> WireRow:
    """The row the target is about: our uncompressed path at the largest size measured."""
    largest = max(row.size for row in rows)
    return next(row for row in rows if row.method == TARGET_METHOD and row.size == largest)


def activation(size: int) -> torch.Tensor:
    """A float32 tensor of ``size`` bytes, half zeros like activations after a ReLU (same data every run)."""
    generator = torch.Generator().manual_seed(0)
    return torch.relu(torch.randn(size // 4, generator=generator))


def bench_wire(sizes: list[int], repeats: int, warmup: int = 20) -> list[WireRow]:
    """Median and p95 round trip of every method at every size, with ratios to raw bytes at that size."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _servers() as clients:
            cells = {}
            for size in sizes:
                tensor = activation(size)
                trips = {method: clients[method](tensor) for method in METHODS}
                for group in (IN_TURNS, *((method,) for method in METHODS if method not in IN_TURNS)):
                    durations = _measure_in_turns(tensor, {method: trips[method] for method in group}, warmup, repeats)
                    cells.update({(method, size): (durations[method], trips[method].wire_bytes) for method in group})
    finally:
        torch.set_num_threads(threads)
    rows = []
    for (method, size), (durations, wire_bytes) in cells.items():
        median = statistics.median(durations)
        rows.append(
            WireRow(
                method=method,
                size=size,
                median_us=median / 1e3,
                p95_us=float(np.percentile(durations, 95)) / 1e3,
                wire_bytes=wire_bytes,
                ratio_to_raw=median / statistics.median(cells[RAW, size][0]),
            )
        )
    return rows


@dataclass(frozen=True)
class _Trip:
    """One round trip of one tensor by one method, ready to repeat; ``run`` returns what came back."""

    run: Callable[[], object]
    wire_bytes: int


_Prepare = Callable[[torch.Tensor], _Trip]


def _measure_in_turns(tensor: torch.Tensor, trips: dict[str, _Trip], warmup: int, repeats: int) -> dict[str, list[int]]:
    """Nanoseconds of each method's timed round trips, the methods taking turns block by block
    (one method alone: all of its round trips back to back)."""
    durations = {method: [] for method in trips}
    blocks = [min(BLOCK, repeats - start) for start in range(0, repeats, BLOCK)]
    try:
        for method, trip in trips.items():
            _check_echo(method, tensor, trip.run())
            _run_untimed(trip, warmup)
        for block in blocks:
            for method, trip in trips.items():
                _run_untimed(trip, BLOCK_WARMUP)
                for _ in range(block):
                    start = time.perf_counter_ns()
                    trip.run()
                    durations[method].append(time.perf_counter_ns() - start)
    except (zmq.Again, ConnectionError):
        raise ExperimentFailed(
            f"no echo of a {size_label(tensor.nbytes)} tensor within {_ECHO_TIMEOUT_S} s; "
            "a server process failed (see its traceback above)"
        ) from None
    return durations


def _run_untimed(trip: _Trip, count: int) -> None:
    for _ in range(count):
        trip.run()


def _check_echo(method: str, sent: torch.Tensor, echo) -> None:
    """A method that does not bring the tensor back intact would be timing something else."""
    data = echo.numpy().tobytes() if isinstance(echo, torch.Tensor) else echo.bytes
    if data != sent.numpy().tobytes():
        raise ExperimentFailed(f"{method}: the echo of a {size_label(sent.nbytes)} tensor differs from what was sent")


@contextmanager
def _servers() -> Iterator[dict[str, _Prepare]]:
    """Start every server process at once (each imports torch), connect to each, stop them all after."""
    spawn = multiprocessing.get_context("spawn")
    with ExitStack() as stack:
        started = {serve: _start(spawn, serve, stack) for serve in (_serve_harness, _serve_raw, _serve_pickle)}
        context = zmq.Context()
        stack.callback(context.term)
        harness_socket = _zmq_client(context, _address(started[_serve_harness]), stack)
        raw_socket = _zmq_client(context, _address(started[_serve_raw]), stack)
        tcp_socket = socket.create_connection((_LOOPBACK, _address(started[_serve_pickle])))
        stack.callback(tcp_socket.close)
        tcp_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ids = itertools.count(1)
        clients = {
            f"harness {codec}": _harness_client(harness_socket, Compression.parse(codec), ids)
            for codec in HARNESS_CODECS
        }
        clients[RAW] = _raw_client(raw_socket)
        clients[PICKLE] = _pickle_client(tcp_socket)
        yield clients


def _start(spawn: SpawnContext, serve: Callable[[Connection], None], stack: ExitStack) -> Connection:
    """Start ``serve`` in a fresh process; the returned pipe yields its address once it listens."""
    parent, child = spawn.Pipe(duplex=False)
    process = spawn.Process(
        target=serve, args=(child,), name=f"bench-wire-{serve.__name__.removeprefix('_serve_')}", daemon=True
    )
    process.start()
    child.close()
    stack.callback(_join, process)
    return parent


def _address(pipe: Connection) -> str | int:
    if not pipe.poll(_STARTUP_S):
        raise ExperimentFailed(f"a benchmark server did not start within {_STARTUP_S:.0f} s")
    try:
        return pipe.recv()
    except EOFError:
        raise ExperimentFailed("a benchmark server exited before it listened (see its traceback above)") from None


def _join(process: multiprocessing.Process) -> None:
    """Wait for a server that was told to stop; one that does not within seconds is terminated."""
    process.join(10)
    if process.is_alive():
        process.terminate()
        process.join()


def _zmq_client(context: zmq.Context, endpoint: str, stack: ExitStack) -> zmq.Socket:
    client = connect_client(context, endpoint, None, Limits())
    client.setsockopt(zmq.RCVTIMEO, _ECHO_TIMEOUT_S * 1000)
    stack.callback(_stop_zmq_server, client)
    return client


def _stop_zmq_server(client: zmq.Socket) -> None:
    """An empty frame where a message belongs tells a ZeroMQ server to exit; linger so it goes out."""
    client.send(b"")
    client.close(linger=_STOP_LINGER_MS)


def _is_stop(frames: list) -> bool:
    return len(frames) == 2 and len(frames[1]) == 0


def _harness_client(client: zmq.Socket, compression: Compression, ids: Iterator[int]) -> _Prepare:
    reply = CompressionSpec(codec=compression.codec, level=compression.level, shuffle=compression.shuffle)
    limits = Limits()

    def prepare(tensor: torch.Tensor) -> _Trip:
        def run() -> torch.Tensor:
            specs, buffers, _ = pack([tensor], ["x"], compression)
            request = Infer(id=next(ids), model=_MODEL, cut=0, values=specs, reply=reply)
            client.send_multipart(encode(request, buffers), copy=False)
            message, reply_buffers = decode_reply(client.recv_multipart(copy=False), limits)
            return unpack(message.values, reply_buffers, message.id)[0]

        specs, buffers, _ = pack([tensor], ["x"], compression)
        request = encode(Infer(id=0, model=_MODEL, cut=0, values=specs, reply=reply), buffers)
        return _Trip(run, sum(len(frame) for frame in request))

    return prepare


def _raw_client(client: zmq.Socket) -> _Prepare:
    def prepare(tensor: torch.Tensor) -> _Trip:
        memory = tensor.numpy()

        def run() -> zmq.Frame:
            client.send(memory, copy=False)
            return client.recv(copy=False)

        return _Trip(run, memory.nbytes)

    return prepare


def _pickle_client(connection: socket.socket) -> _Prepare:
    def prepare(tensor: torch.Tensor) -> _Trip:
        def run() -> torch.Tensor:
            _send_message(connection, _compress_pickle(tensor))
            return _unpickle_tensor(blosc2.decompress(_receive_message(connection)))

        return _Trip(run, _LENGTH.size + len(_compress_pickle(tensor)))

    return prepare


def _serve_harness(pipe: Connection) -> None:
    """Decode a request as the worker does and send its tensors back with the reply compression it asks."""
    torch.set_num_threads(1)
    limits = Limits()
    with _zmq_server(pipe) as server:
        while not _is_stop(frames := server.recv_multipart(copy=False)):
            identity, *body = frames
            message, buffers = decode_request(body, limits)
            values = unpack(message.values, buffers, message.id)
            codec = message.reply
            specs, reply_buffers, _ = pack(
                values, [spec.name for spec in message.values], Compression(codec.codec, codec.level, codec.shuffle)
            )
            reply = encode(Result(id=message.id, values=specs, timings=_NO_TIMINGS), reply_buffers)
            server.send_multipart([identity, *reply], copy=False)


def _serve_raw(pipe: Connection) -> None:
    """Echo each frame unchanged: the floor every method is measured against."""
    torch.set_num_threads(1)
    with _zmq_server(pipe) as server:
        while not _is_stop(frames := server.recv_multipart(copy=False)):
            server.send_multipart(frames, copy=False)


@contextmanager
def _zmq_server(pipe: Connection) -> Iterator[zmq.Socket]:
    context = zmq.Context()
    server = bind_server(context, f"tcp://{_LOOPBACK}:*", None, Limits())
    try:
        pipe.send(server.endpoint)
        yield server.socket
    finally:
        server.close()
        context.term()


def _serve_pickle(pipe: Connection) -> None:
    """Unpickle each message and pickle it back, until the client hangs up."""
    torch.set_num_threads(1)
    with socket.create_server((_LOOPBACK, 0)) as listener:
        pipe.send(listener.getsockname()[1])
        connection, _ = listener.accept()
    with connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while (payload := _receive_message(connection)) is not None:
            # Safe only because the one peer is this benchmark's own client process on loopback.
            tensor = _unpickle_tensor(blosc2.decompress(payload))
            _send_message(connection, _compress_pickle(tensor))


class _TensorUnpickler(pickle.Unpickler):
    """Reads a pickled tensor and nothing else: the pickle stream of hand-rolled tools, decoded
    without running whatever a received stream names (even between this benchmark's own processes).
    It is no slower than ``pickle.loads``, so the baseline is not handicapped by it."""

    _ALLOWED: ClassVar[dict[tuple[str, str], Callable]] = {
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch.storage", "_load_from_bytes"): lambda data: torch.load(io.BytesIO(data), weights_only=True),
        ("collections", "OrderedDict"): collections.OrderedDict,
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a tensor")
        return self._ALLOWED[(module, name)]


def _unpickle_tensor(data: bytes) -> torch.Tensor:
    return _TensorUnpickler(io.BytesIO(data)).load()


def _compress_pickle(tensor: torch.Tensor) -> bytes:
    """blosc2's defaults, but for a typesize of 1: a pickle's length need not be a multiple of 8."""
    return blosc2.compress(pickle.dumps(tensor), typesize=1)


def _send_message(connection: socket.socket, payload: bytes) -> None:
    connection.sendall(_LENGTH.pack(len(payload)) + payload)


def _receive_message(connection: socket.socket) -> bytearray | None:
    """One length-prefixed message; None when the peer closed the connection between messages."""
    prefix = _receive_exactly(connection, _LENGTH.size)
    return None if prefix is None else _receive_exactly(connection, _LENGTH.unpack(prefix)[0])


def _receive_exactly(connection: socket.socket, count: int) -> bytearray | None:
    buffer = bytearray(count)
    view = memoryview(buffer)
    received = 0
    while received < count:
        got = connection.recv_into(view[received:])
        if got == 0:
            if received == 0:
                return None
            raise ConnectionError(f"peer closed after {received} of {count} bytes")
        received += got
    return buffer
