"""Talking to a worker: one request, one reply, with a deadline and errors that say what happened.

A reply whose id is not the one awaited (left over from a request that timed out) is dropped. The
socket's events are watched while waiting: a refused key fails at once with a message that says so,
and a connection that drops (the worker died, was killed or restarted) fails at once as
``WorkerLost`` instead of after the whole deadline, so the edge can record the inference as failed
and retry it once the worker is back. ``WorkerSilent`` is the deadline passing with no answer (a
host or link gone quiet). Both are ``WorkerUnavailable``: worth waiting for; an error reply is not.

In a pipeline the request goes to the first hop and the reply (or an error) may come back from any
hop, so the wait watches a ``ReplyGroup``: every hop's socket and connection events at once.
"""

import itertools
import time
from collections.abc import Sequence
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
    """A socket to one worker. ``identity`` is its routing id (a pipeline's client gives every hop
    the same one, so the last hop can reply to it); ZeroMQ picks one otherwise."""

    def __init__(
        self,
        endpoint: str,
        keys: ClientKeys | None = None,
        limits: Limits | None = None,
        identity: bytes | None = None,
    ):
        self.endpoint = endpoint
        self.limits = limits or Limits()
        self.context = zmq.Context()
        self.socket = connect_client(self.context, endpoint, keys, self.limits, identity)
        self.monitor = self.socket.get_monitor_socket(AUTH_FAILURES | zmq.EVENT_DISCONNECTED)
        self._own = ReplyGroup((self,))
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def exchange(
        self, frames: list, request_id: int, timeout_s: float = 30.0, replying: "ReplyGroup | None" = None
    ) -> Exchange:
        """Send a request's ``frames`` and wait for reply ``request_id`` on this socket, or on any of
        ``replying``'s; raise on timeout, a dropped connection or an error reply."""
        group = replying or self._own
        group.check_events()
        sent_ns = self.send(frames)
        return group.wait(request_id, sent_ns, timeout_s)

    def send(self, frames: list) -> int:
        """Send a request without waiting (``wait`` for its reply later); returns when it left."""
        sent_ns = time.monotonic_ns()
        self.socket.send_multipart(frames, copy=False)
        return sent_ns

    def wait(self, request_id: int, sent_ns: int, timeout_s: float) -> Exchange:
        """The reply to a request ``send`` sent at ``sent_ns``, as ``exchange`` waits for it."""
        return self._own.wait(request_id, sent_ns, timeout_s)

    def ping(self, timeout_s: float = 5.0) -> State:
        request = Ping(id=self.next_id())
        return self.exchange(encode(request), request.id, timeout_s).reply

    def prepare(
        self, model: ModelSpec, cut: int, end: int | None = None, next_hop: str | None = None, timeout_s: float = 300.0
    ) -> Ready:
        """Have the worker build the segment from ``cut`` to ``end`` (the tail by default) and connect to
        ``next_hop`` now, so that no measured inference pays for either."""
        request = Prepare(id=self.next_id(), model=model, cut=cut, end=end, next=next_hop)
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

    def check_events(self) -> None:
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


class ReplyGroup:
    """The sockets a reply may come back on, watched together with their connection events."""

    def __init__(self, clients: Sequence[WorkerClient]):
        self.clients = tuple(clients)
        self._poller = zmq.Poller()
        self._by_socket = {}
        self._monitors = set()
        for client in self.clients:
            self._poller.register(client.socket, zmq.POLLIN)
            self._poller.register(client.monitor, zmq.POLLIN)
            self._by_socket[client.socket] = client
            self._monitors.add(client.monitor)

    def check_events(self) -> None:
        for client in self.clients:
            client.check_events()

    def wait(self, request_id: int, sent_ns: int, timeout_s: float) -> Exchange:
        deadline = sent_ns + int(timeout_s * 1e9)
        while True:
            remaining_ms = max(0, (deadline - time.monotonic_ns()) // 1_000_000)
            ready = dict(self._poller.poll(remaining_ms))
            if not self._monitors.isdisjoint(ready):
                self.check_events()
            answered = [socket for socket in ready if socket in self._by_socket]
            if not answered:
                if time.monotonic_ns() >= deadline:
                    where = " or ".join(client.endpoint for client in self.clients)
                    raise WorkerSilent(
                        f"worker at {where} did not answer within {timeout_s:g} s; is it running? "
                        f"(`harness worker ping {self.clients[0].endpoint}`)"
                    )
                continue
            for socket in answered:
                exchange = self._receive(self._by_socket[socket], request_id, sent_ns)
                if exchange is not None:
                    return exchange

    @staticmethod
    def _receive(client: WorkerClient, request_id: int, sent_ns: int) -> Exchange | None:
        """The reply waiting on ``client``'s socket if it is the one awaited; None for a stale one."""
        reply_frames = client.socket.recv_multipart(copy=False)
        received_ns = time.monotonic_ns()
        try:
            reply, reply_buffers = decode_reply(reply_frames, client.limits)
        except FrameError as error:
            raise ExperimentFailed(f"worker at {client.endpoint} sent a malformed reply: {error}") from None
        if reply.id != request_id:
            return None
        if isinstance(reply, Error):
            raise WorkerError(client.endpoint, reply.code, reply.message)
        wire_bytes = sum(len(frame) for frame in reply_frames)
        return Exchange(reply, reply_buffers, sent_ns, received_ns, wire_bytes)
