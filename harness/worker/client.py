"""Talking to a worker: one request, one reply, with a deadline and errors that say what happened.

A reply whose id is not the one awaited (left over from a request that timed out) is dropped. The
socket's events are watched while waiting: a refused key fails at once with a message that says so,
and a connection that drops (the worker died, was killed or restarted) fails at once as
``WorkerLost`` instead of after the whole deadline, so the edge can record the inference as failed
and retry it once the worker is back. ``WorkerSilent`` is the deadline passing with no answer (a
host or link gone quiet). Both are ``WorkerUnavailable``: worth waiting for; an error reply is not.
"""

import itertools
import time
from dataclasses import dataclass

import zmq
from zmq.utils.monitor import recv_monitor_message

from harness.errors import ExperimentFailed
from harness.wire.frames import (
    Error,
    FrameError,
    Limits,
    ModelSpec,
    Ping,
    Prepare,
    Profile,
    Profiled,
    Ready,
    State,
    decode_reply,
    encode,
)
from harness.wire.keys import ClientKeys
from harness.wire.sockets import AUTH_FAILURES, connect_client


class WorkerUnavailable(ExperimentFailed):
    """The worker could not be reached or went away mid-request; the request may be retried."""


class WorkerLost(WorkerUnavailable):
    """The connection to the worker dropped while a request was in flight or since the last one."""


class WorkerSilent(WorkerUnavailable):
    """No answer within the deadline."""


class WorkerError(ExperimentFailed):
    """The worker answered with an error reply."""

    def __init__(self, endpoint: str, code: str, message: str):
        super().__init__(f"worker at {endpoint} refused the request ({code}): {message}")
        self.code = code


@dataclass
class Exchange:
    """A reply with its buffers, and when (this host's monotonic clock) the request left and it came."""

    reply: object
    buffers: list
    sent_ns: int
    received_ns: int
    wire_bytes: int


class WorkerClient:
    def __init__(self, endpoint: str, keys: ClientKeys | None = None, limits: Limits | None = None):
        self.endpoint = endpoint
        self.limits = limits or Limits()
        self.context = zmq.Context()
        self.socket = connect_client(self.context, endpoint, keys, self.limits)
        self.monitor = self.socket.get_monitor_socket(AUTH_FAILURES | zmq.EVENT_DISCONNECTED)
        self._poller = zmq.Poller()
        self._poller.register(self.socket, zmq.POLLIN)
        self._poller.register(self.monitor, zmq.POLLIN)
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def exchange(self, frames: list, request_id: int, timeout_s: float = 30.0) -> Exchange:
        """Send a request's ``frames`` and wait for reply ``request_id``; raise on timeout, a dropped
        connection or an error reply."""
        self._check_events()
        sent_ns = time.monotonic_ns()
        self.socket.send_multipart(frames, copy=False)
        deadline = sent_ns + int(timeout_s * 1e9)
        while True:
            remaining_ms = max(0, (deadline - time.monotonic_ns()) // 1_000_000)
            ready = dict(self._poller.poll(remaining_ms))
            if self.monitor in ready:
                self._check_events()
            if self.socket not in ready:
                if time.monotonic_ns() >= deadline:
                    raise WorkerSilent(
                        f"worker at {self.endpoint} did not answer within {timeout_s:g} s; is it running? "
                        f"(`harness worker ping {self.endpoint}`)"
                    )
                continue
            reply_frames = self.socket.recv_multipart(copy=False)
            received_ns = time.monotonic_ns()
            try:
                reply, reply_buffers = decode_reply(reply_frames, self.limits)
            except FrameError as error:
                raise ExperimentFailed(f"worker at {self.endpoint} sent a malformed reply: {error}") from None
            if reply.id != request_id:
                continue
            if isinstance(reply, Error):
                raise WorkerError(self.endpoint, reply.code, reply.message)
            wire_bytes = sum(len(frame) for frame in reply_frames)
            return Exchange(reply, reply_buffers, sent_ns, received_ns, wire_bytes)

    def ping(self, timeout_s: float = 5.0) -> State:
        request = Ping(id=self.next_id())
        return self.exchange(encode(request), request.id, timeout_s).reply

    def prepare(self, model: ModelSpec, cut: int, timeout_s: float = 300.0) -> Ready:
        """Have the worker build the tail of ``cut`` now, so that no measured inference pays for it."""
        request = Prepare(id=self.next_id(), model=model, cut=cut)
        return self.exchange(encode(request), request.id, timeout_s).reply

    def profile(self, model: ModelSpec, repeats: int, warmup: int, timeout_s: float = 600.0) -> Profiled:
        """Per-layer latency of ``model`` measured on the worker's host."""
        request = Profile(id=self.next_id(), model=model, repeats=repeats, warmup=warmup)
        return self.exchange(encode(request), request.id, timeout_s).reply

    def close(self) -> None:
        self.socket.disable_monitor()
        self.monitor.close(linger=0)
        self.socket.close(linger=0)
        self.context.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _check_events(self) -> None:
        """Raise for what the socket reported since the last look: a refused key, a dropped connection."""
        events = []
        while self.monitor.poll(0):
            events.append(recv_monitor_message(self.monitor)["event"])
        if any(event & AUTH_FAILURES for event in events):
            raise ExperimentFailed(
                f"worker at {self.endpoint} rejected this client during the handshake: "
                "its key is not in the worker's clients/ (or the worker expects keys and none were given)"
            )
        if zmq.EVENT_DISCONNECTED in events:
            raise WorkerLost(f"the connection to the worker at {self.endpoint} dropped (the worker stopped or died)")
