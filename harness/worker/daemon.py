"""The worker: a ZeroMQ daemon that runs model segments for any number of edge clients.

Requests are served one at a time in arrival order, so one client's inference never shares the
processor with another's and the compute time it reports is its own. Every request gets exactly one
reply; a request that cannot be served gets an ``error`` reply and the worker goes on. Clocks are
monotonic nanoseconds on this host; on a GPU the device is synchronised before each reading, each
received tensor is moved to the device once and each output back once.

In a pipeline of workers a request carries the rest of its route: this worker runs its range,
sends the live values on to the next hop over a persistent socket and turns to its next request
without waiting, so the stages overlap. The last hop replies straight to the edge, which is
connected to every hop with one routing id (``reply_to``); errors go there too. A worker forwards
only to the ``peers`` its operator listed, as a client with the operator's keys, so a request
cannot make it connect anywhere else.
"""

import logging
import math
import os
import signal
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
import zmq
from torch.utils import _pytree as pytree

from harness.energy import Mark, open_meter
from harness.energy.sources import POWERCAP
from harness.errors import BadInput
from harness.model.profile import profile
from harness.wire.codecs import Coded
from harness.wire.compression import Compression
from harness.wire.frames import (
    Chunk,
    Close,
    Closed,
    Commit,
    Committed,
    Error,
    FrameError,
    HopFigures,
    Infer,
    LayerFigures,
    Limits,
    Open,
    Opened,
    Pace,
    Ping,
    Prepare,
    Probe,
    Probed,
    Profile,
    Profiled,
    Ready,
    Result,
    Sink,
    State,
    Stored,
    Sunk,
    TensorSpec,
    Timings,
    decode_request,
    encode,
)
from harness.wire.keys import ClientKeys, WorkerKeys
from harness.wire.link import EmulatedLink
from harness.wire.sockets import bind_server, connect_client
from harness.wire.tensors import decode_values, pack, unpack
from harness.worker.client import WorkerClient, WorkerError, WorkerUnavailable
from harness.worker.hostinfo import compute_device, peak_rss_bytes
from harness.worker.segments import ModelPolicy, SegmentCache
from harness.worker.sessions import SessionStore
from harness.worker.supervisor import supervised

log = logging.getLogger("harness.worker")
POLL_MS = 200
"""How often the loop looks for a stop request while idle."""


@dataclass
class WorkerConfig:
    endpoint: str
    keys: WorkerKeys | None = None
    device: str = "cpu"
    limits: Limits = field(default_factory=Limits)
    policy: ModelPolicy = field(default_factory=ModelPolicy)
    max_models: int = 4
    peers: tuple[str, ...] = ()
    """The workers this one may forward to, as the operator wrote their endpoints."""
    peer_keys: ClientKeys | None = None
    """The client keys it presents to them (needed off loopback)."""
    max_sessions: int = 2
    """Upload sessions open at once (each holds a model)."""
    chunk_bytes: int = 16 * 2**20
    """The largest chunk of an upload."""
    energy: str = "none"
    """The power source whose joules each reply carries (``auto``, ``rapl``, ``nvml``, ``jetson``,
    ``none`` or a user's meter), over the request's busy window."""
    powercap: Path = POWERCAP
    """Where RAPL's zones are (sysfs, unless a container mounts it elsewhere)."""


@dataclass(frozen=True)
class Outgoing:
    """Reply frames and whom they go to: a client's routing id, or None for the request's sender."""

    frames: list
    to: bytes | None = None


class Worker:
    """Bind, then ``serve()`` until ``stop()`` (or SIGTERM/SIGINT, see ``stop_on_signals``)."""

    def __init__(self, config: WorkerConfig):
        self.config = config
        self.device = compute_device(config.device)
        self.segments = SegmentCache(self.device, config.policy, config.limits, config.max_models)
        self.sessions = SessionStore(self.device, config.policy, config.max_sessions)
        self.context = zmq.Context()
        self.server = bind_server(self.context, config.endpoint, config.keys, config.limits)
        self.endpoint = self.server.endpoint
        self.started_ns = time.monotonic_ns()
        self.requests = 0
        self.errors = 0
        self._clients: set[bytes] = set()
        self._peers: dict[str, zmq.Socket] = {}
        self._probers: dict[str, WorkerClient] = {}
        self._stopping = False
        self.energy = open_meter(config.energy, str(self.device), config.powercap)
        self._window: Mark | None = None

    def stop(self, *_signal_args) -> None:
        self._stopping = True

    def stop_on_signals(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def serve(self) -> None:
        socket = self.server.socket
        try:
            while not self._stopping:
                if not socket.poll(POLL_MS):
                    continue
                frames = socket.recv_multipart(copy=False)
                received_ns = self._now()
                self._window = self.energy.mark() if self.energy is not None else None
                identity, body = frames[0], frames[1:]
                self._clients.add(identity.bytes)
                outgoing = self.handle(body, received_ns)
                if outgoing is not None:
                    socket.send_multipart([outgoing.to or identity, *outgoing.frames], copy=False)
        finally:
            self.close()

    def close(self) -> None:
        for peer in self._peers.values():
            peer.close(linger=0)
        for prober in self._probers.values():
            prober.close()
        self.server.close()
        self.context.term()
        if self.energy is not None:
            self.energy.close()
        log.info("worker stopped after %d requests (%d errors)", self.requests, self.errors)

    def handle(self, body: list, received_ns: int) -> Outgoing | None:
        """The reply to one request's frames (None when it went on to the next hop); never raises."""
        self.requests += 1
        request_id = 0
        reply_to = None
        try:
            message, buffers = decode_request(body, self.config.limits)
            request_id = message.id
            reply_to = bytes.fromhex(message.reply_to) if getattr(message, "reply_to", None) else None
            return self._dispatch(message, buffers, received_ns, reply_to)
        except FrameError as error:
            self.errors += 1
            log.warning("request %d refused (%s): %s", error.request_id, error.code, error)
            return Outgoing(encode(Error(id=error.request_id, code=error.code, message=str(error)[:4000])), reply_to)
        except Exception as error:  # one failing request must not take the worker down for every client
            self.errors += 1
            log.exception("request %d failed", request_id)
            failed = Error(id=request_id, code="failed", message=f"{type(error).__name__}: {error}"[:4000])
            return Outgoing(encode(failed), reply_to)

    def _dispatch(self, message, buffers: list, received_ns: int, reply_to: bytes | None) -> Outgoing | None:
        if isinstance(message, Ping):
            return Outgoing(encode(self.state(message.id)))
        if isinstance(message, Profile):
            return Outgoing(encode(self._profile(message)))
        if isinstance(message, Probe):
            return Outgoing(encode(self._probe(message)))
        if isinstance(message, Sink):
            return Outgoing(encode(Sunk(id=message.id, nbytes=sum(len(buffer) for buffer in buffers))))
        if isinstance(message, Open | Chunk | Commit | Close):
            return Outgoing(encode(self._upload(message, buffers)))
        if isinstance(message, Prepare):
            prepared = self.segments.get(message.model, message.cut, message.end, message.id)
            if message.next is not None:
                self._peer(message.next, message.id)
            live = tuple(crossing.name for crossing in prepared.live)
            return Outgoing(encode(Ready(id=message.id, load_ns=prepared.load_ns, live=live, weights=prepared.weights)))
        return self._infer(message, buffers, received_ns, reply_to)

    def _upload(self, message, buffers: list):
        """An upload session's requests: open, a chunk of a parameter, a partition's commit, close."""
        if isinstance(message, Open):
            opened = self.sessions.open(message.session, message.model, message.id)
            return Opened(
                id=message.id,
                session=message.session,
                params=len(opened.params),
                param_bytes=opened.param_bytes,
                load_ns=opened.load_ns,
            )
        if isinstance(message, Close):
            self.sessions.close(message.session, message.id)
            return Closed(id=message.id)
        session = self.sessions.get(message.session, message.id)
        if isinstance(message, Commit):
            build_ns = session.commit(message, message.id)
            return Committed(
                id=message.id, stage=message.stage, build_ns=build_ns, missing=session.missing, digest=session.digest()
            )
        if len(buffers[0]) > self.config.chunk_bytes:
            raise FrameError(
                "too-large",
                f"header field values: a chunk of {len(buffers[0])} bytes; this worker takes at most "
                f"{self.config.chunk_bytes}",
                message.id,
            )
        stored = session.store(message, buffers[0], message.id)
        return Stored(id=message.id, param=message.param, received=stored.received_bytes, nbytes=stored.nbytes)

    def state(self, request_id: int) -> State:
        from harness import __version__

        supervisor, restarts = supervised()
        return State(
            id=request_id,
            pid=os.getpid(),
            supervisor=supervisor,
            restarts=restarts,
            version=__version__,
            device=str(self.device),
            uptime_ns=time.monotonic_ns() - self.started_ns,
            requests=self.requests,
            errors=self.errors,
            clients=len(self._clients),
            loaded=(*self.segments.loaded(), *self.sessions.loaded()),
        )

    def _profile(self, message: Profile) -> Profiled:
        """Per-layer latency of the whole model on this worker's device, where its segments run."""
        graph = self.segments.graph(message.model, message.id)
        report = profile(graph, None, message.repeats, message.warmup, self.device)
        layers = tuple(
            LayerFigures(
                name=layer.name,
                op=layer.op,
                median_ns=round(layer.median_ms * 1e6),
                p95_ns=round(layer.p95_ms * 1e6),
            )
            for layer in report.layers
        )
        return Profiled(id=message.id, layers=layers)

    def _infer(self, message: Infer, buffers: list, received_ns: int, reply_to: bytes | None) -> Outgoing | None:
        if message.route and (message.end is None or reply_to is None):
            raise FrameError("bad-frame", "a request with a route must name its end cut and reply_to", message.id)
        if message.exits is not None:
            return self._infer_with_exits(message, buffers, received_ns, reply_to)
        if message.session is not None:
            if message.route:
                raise FrameError("bad-frame", "an upload session's segment replies to its client: no route", message.id)
            prepared = self.sessions.get(message.session, message.id).segment(message.cut, message.end, message.id)
        else:
            prepared = self.segments.get(message.model, message.cut, message.end, message.id)
        _check_live(message, prepared.live)
        values, codec_ns = self._values(message, buffers)
        decoded_ns = self._now()
        with torch.inference_mode():
            output = prepared.segment(*values)
        computed_ns = self._now()
        if message.end is None:
            names, leaves = _output_leaves(output)
        else:
            names, leaves = list(prepared.sends), list(output)
        reply = message.reply
        specs, out_buffers, timings = self._pack(message, names, leaves, received_ns, decoded_ns, computed_ns, codec_ns)
        in_pipeline = bool(message.route or message.upstream)
        hops = (*message.upstream, _figures(message, buffers, timings)) if in_pipeline else ()
        if not message.route:
            result = Result(id=message.id, values=specs, timings=timings, hops=hops, peak_rss=peak_rss_bytes())
            frames = encode(result, out_buffers)
            _hold(message.reply_pace, frames)
            return Outgoing(frames, reply_to)
        hop, rest = message.route[0], message.route[1:]
        onward = Infer(
            id=message.id,
            model=message.model,
            cut=message.end,
            values=specs,
            reply=reply,
            end=hop.end,
            route=rest,
            reply_to=message.reply_to,
            reply_pace=message.reply_pace,
            upstream=hops,
        )
        peer = self._peer(hop.endpoint, message.id)
        frames = encode(onward, out_buffers)
        _hold(hop.pace, frames)
        try:
            peer.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            raise FrameError(
                "unreachable", f"next hop {hop.endpoint} is not taking requests (its queue is full)", message.id
            ) from None
        return None

    def _infer_with_exits(self, message: Infer, buffers: list, received_ns: int, reply_to: bytes | None) -> Outgoing:
        """The last part with its exits: the sample leaves at the first confident exit, whose logits
        are the reply, or runs to the model's output."""
        if message.route or message.end is not None:
            raise FrameError(
                "bad-frame", "exits run in the last part: a request with exits names no end or route", message.id
            )
        exits = message.exits
        prepared = self.segments.exit_part(message.model, message.cut, exits, message.id)
        _check_live(message, prepared.live)
        values, codec_ns = self._values(message, buffers)
        decoded_ns = self._now()
        at_cut = len(values) - len(prepared.carried)
        try:
            early = prepared.part.first_confident(exits.threshold, prepared.carried, values[at_cut:])
            outcome = prepared.part(exits.threshold, *values[:at_cut]) if early is None else early
        except BadInput as error:
            raise FrameError("mismatch", str(error), message.id) from None
        computed_ns = self._now()
        if outcome.exit is None:
            names, leaves = _output_leaves(outcome.live)
            left, confidence = 0, None
        else:
            names, leaves = ["output"], [outcome.logits]
            first = exits.first - len(prepared.carried) if early is not None else exits.first
            left, confidence = first + outcome.exit - 1, outcome.confidence
        specs, out_buffers, timings = self._pack(message, names, leaves, received_ns, decoded_ns, computed_ns, codec_ns)
        result = Result(
            id=message.id, values=specs, timings=timings, exit=left, confidence=confidence, peak_rss=peak_rss_bytes()
        )
        frames = encode(result, out_buffers)
        _hold(message.reply_pace, frames)
        return Outgoing(frames, reply_to)

    def _values(self, message: Infer, buffers: list) -> tuple[list, int]:
        """The request's values, tensors moved to this worker's device once (a cut codec's payload,
        the smaller, before it is decoded there), and the time undoing the codec took (0: none)."""
        values = [_to_device(value, self.device) for value in unpack(message.values, buffers, message.id)]
        if not any(isinstance(value, Coded) for value in values):
            return values, 0
        started_ns = self._now()
        values = decode_values(values, message.id, partial(self.config.policy.codec, request_id=message.id))
        return values, self._now() - started_ns

    def _pack(
        self,
        message: Infer,
        names: list[str],
        leaves: list,
        received_ns: int,
        decoded_ns: int,
        computed_ns: int,
        codec_ns: int,
    ) -> tuple[tuple, list, Timings]:
        """What goes back (or on), moved off the device once and encoded, and this worker's timings."""
        leaves = [leaf.cpu() if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves]
        reply = message.reply
        specs, out_buffers, _ = pack(leaves, names, Compression(reply.codec, reply.level, reply.shuffle))
        encoded_ns = self._now()
        joules = None
        if self.energy is not None and self._window is not None:
            joules = self.energy.joules(self._window, self.energy.mark())
        timings = Timings(
            decode_ns=decoded_ns - received_ns,
            compute_ns=computed_ns - decoded_ns,
            encode_ns=encoded_ns - computed_ns,
            busy_ns=encoded_ns - received_ns,
            codec_ns=codec_ns,
            joules=joules,
        )
        return specs, out_buffers, timings

    def _probe(self, message: Probe) -> Probed:
        """Round trips and throughput from here to a listed peer; a peer that fails is a gap."""
        self._check_peer(message.target, message.id)
        timeout_s = message.timeout_ms / 1000
        prober = self._probers.get(message.target)
        try:
            if prober is None:
                prober = self._probers[message.target] = WorkerClient(
                    message.target, self.config.peer_keys, self.config.limits
                )
            rtt_s = []
            for _ in range(message.echoes):
                started = time.monotonic_ns()
                _hold_round_trip(message.pace, 0)
                prober.ping(timeout_s)
                rtt_s.append((time.monotonic_ns() - started) / 1e9)
            size = message.bulk_bytes
            bulk = TensorSpec(name="bulk", dtype="uint8", shape=(size,), codec="none", nbytes=size, wire=size)
            request = Sink(id=prober.next_id(), values=(bulk,))
            frames = encode(request, [bytes(size)])
            handed_ns = time.monotonic_ns()
            _hold_round_trip(message.pace, sum(len(frame) for frame in frames))
            exchange = prober.exchange(frames, request.id, timeout_s)
        except (WorkerUnavailable, WorkerError) as error:
            if message.target in self._probers:
                self._probers.pop(message.target).close()
            return Probed(id=message.id, target=message.target, gap=str(error)[:4000])
        seconds = (exchange.received_ns - handed_ns) / 1e9 - min(rtt_s)
        return Probed(id=message.id, target=message.target, rtt_s=tuple(rtt_s), rate=size / max(seconds, 1e-9))

    def _check_peer(self, endpoint: str, request_id: int) -> None:
        if endpoint not in self.config.peers:
            listed = ", ".join(self.config.peers) or "none (start the worker with --peer)"
            raise FrameError("refused", f"{endpoint} is not one of this worker's peers: {listed}", request_id)

    def _peer(self, endpoint: str, request_id: int) -> zmq.Socket:
        """The persistent socket to next hop ``endpoint``, opened on first use; only to listed peers."""
        self._check_peer(endpoint, request_id)
        if endpoint not in self._peers:
            try:
                socket = connect_client(self.context, endpoint, self.config.peer_keys, self.config.limits)
            except BadInput as error:
                raise FrameError("refused", f"next hop {endpoint}: {error}", request_id) from None
            self._peers[endpoint] = socket
        return self._peers[endpoint]

    def _now(self) -> int:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.monotonic_ns()


def _figures(message: Infer, buffers: list, timings: Timings) -> HopFigures:
    """This worker's part of a pipeline's request, for the edge's records."""
    return HopFigures(
        timings=timings,
        received_raw=sum(spec.nbytes for spec in message.values if spec.kind == "tensor"),
        received_wire=sum(len(buffer) for buffer in buffers),
    )


def _hold_round_trip(pace: Pace | None, nbytes: int) -> None:
    """A probe's share of an emulated link: ``nbytes`` one way and the delay both ways, held here
    before sending, since the answer coming back is not paced by anyone."""
    if pace is not None:
        EmulatedLink(pace.rate or math.inf, 2 * pace.delay_ns).hold_outgoing(nbytes)


def _hold(pace: Pace | None, frames: list) -> None:
    """Hold a message for its emulated link (the bytes of every frame at its rate, plus its delay)."""
    if pace is not None:
        EmulatedLink(pace.rate or math.inf, pace.delay_ns).hold_outgoing(sum(len(frame) for frame in frames))


def _output_leaves(output) -> tuple[list[str], list]:
    """The model's output as named leaves (``output``, ``output[0]``, ...)."""
    keyed = pytree.tree_flatten_with_path(output)[0]
    return ["output" + pytree.keystr(path) for path, _ in keyed], [leaf for _, leaf in keyed]


def _check_live(message: Infer, live) -> None:
    """The request must carry exactly what this worker's own split sends at that cut."""
    if len(message.values) != len(live):
        raise FrameError(
            "mismatch",
            f"cut {message.cut} receives {len(live)} values, the request holds {len(message.values)}",
            message.id,
        )
    for spec, crossing in zip(message.values, live, strict=True):
        expected_kind = "tensor" if crossing.kind == "tensor" else "scalar"
        if spec.name != crossing.name or spec.kind != expected_kind:
            raise FrameError(
                "mismatch",
                f"cut {message.cut}: expected {crossing.kind} '{crossing.name}', got {spec.kind} '{spec.name}'",
                message.id,
            )
        if spec.kind == "tensor" and (spec.dtype != crossing.dtype or tuple(spec.shape) != crossing.shape):
            raise FrameError(
                "mismatch",
                f"cut {message.cut}: '{crossing.name}' must be {crossing.dtype} {list(crossing.shape)}, "
                f"got {spec.dtype} {list(spec.shape)}",
                message.id,
            )
        if spec.kind == "scalar" and spec.dtype != crossing.kind:
            raise FrameError(
                "mismatch", f"cut {message.cut}: scalar '{crossing.name}' must be {crossing.kind}", message.id
            )


def _to_device(value, device: torch.device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, Coded):
        return replace(value, payload=value.payload.to(device))
    return value
