"""A plan replayed as the system runs it, without hardware: the upload in chunks and the queries on one
link, one worker, one client, as a discrete-event simulation (SimPy).

What the planners' prediction leaves out and this puts in, as the edge runs it. The upload and a
query's request are two flows on the link, each getting an equal share of its rate while both have
bytes on it; the upload's chunks cross one after another. The upload yields to a request: it hands
the link no chunk while one crosses. At most ``UPLOAD_WINDOW`` chunks are unacknowledged, and the
worker does one thing at a time, in arrival order: a chunk that lands while it runs a query's range
waits for the range's end before it is stored and acknowledged, so a long range stalls the upload
once the window is spent. Building a partition waits in the same line; a partition counts from its
acknowledgement, while the next partition's chunks go on. A query runs through the latest
acknowledged partition, placed as the planners place it. The link's delay is added to every message.

Where the chunks wait differs between links (``UploadQueue``). The emulated link holds its budget for
one chunk at a time, and the upload waits until a request has crossed. Under tc the kernel queues
what the sockets were given, first in, first out: the upload's whole window, beside which a request
crosses, and the upload pauses only for the time the request would take alone; on the way back an
acknowledgement waits behind a reply already queued. In the virtual lab (ResNet-18 at 80 Mbit, the
edge at a quarter of a core) a replay with one chunk beside each request, and the worker free to store
chunks between a range's layers, acknowledged the last partition 15 to 25% before the upload did in
seven runs; this one 2 to 11% before, with each stage's queries within 4% of the measured time (260
and 196 ms replayed, 259 and 203 measured).

A client whose processor is small pays for its upload (``Contention``): while the upload runs, its
share of the processor goes to sending (the network stack, the encryption, the messages), so its
layers take longer than they did alone, its own messages wait for the processor beyond what their
bytes take on the link, and the upload slows while a layer computes; where the worker shares a host
with it (a lab on one machine) the worker's ranges slow too. Each stage's cost and the upload's
share are measured before the upload (``UploadExperiment.measure_contention``: queries at every
stage beside a throwaway upload); a client with cores to spare measures next to nothing.
"""

import itertools
import math
from dataclasses import dataclass

import simpy

from harness.partition.upload.chain import UploadChain
from harness.partition.upload.timeline import Query, Stage, Timeline
from harness.wire.frames import UPLOAD_WINDOW

ACK_BYTES = 64
"""About what an acknowledgement costs on the wire."""


@dataclass(frozen=True)
class StageCost:
    """A query's cost at one stage while the upload runs, as measured beside one: its compute on the
    client and on the worker over their profiles (a worker that shares its host with a busy client
    slows too), and the least its messages take (a small client's messaging waits for the
    processor its upload holds, beyond what the bytes take on the link)."""

    client_scale: float = 1.0
    server_scale: float = 1.0
    messages_ms: float = 0.0

    def __post_init__(self):
        if not (self.client_scale > 0 and self.server_scale > 0 and self.messages_ms >= 0):
            raise ValueError(f"stage cost {self}: expected scales > 0 and messages_ms >= 0")


@dataclass(frozen=True)
class Contention:
    """What the upload costs the queries, as measured: ``stages``, what a query at each stage pays
    while the upload lasts, stage 0 (the client alone) first (empty: as profiled, its messages as the
    link carries them); ``upload_share``, the share of the link's rate the upload reaches while the
    client computes."""

    stages: tuple[StageCost, ...] = ()
    upload_share: float = 1.0

    def __post_init__(self):
        if not 0 < self.upload_share <= 1:
            raise ValueError(f"contention {self}: expected upload_share in (0, 1]")


AS_PROFILED = StageCost()
NO_CONTENTION = Contention()


@dataclass(frozen=True)
class UploadQueue:
    """How the upload meets the queries on the link. ``held``: how many chunks the link holds for the
    upload at once, crossing one after another as one flow beside a request; 1 under the emulated
    link, which holds its budget for one chunk at a time, the whole window under tc, whose kernel
    queues what the socket was given. ``kernel_queues``: tc's queues are first in, first out, so
    the upload pauses only for the time a request would take alone (the emulated link: until it has
    crossed), and an acknowledgement waits behind a reply already on its way back (the emulated link
    does not hold acknowledgements)."""

    held: int = 1
    kernel_queues: bool = False

    def __post_init__(self):
        if not 1 <= self.held <= UPLOAD_WINDOW:
            raise ValueError(f"upload queue {self}: expected 1 to {UPLOAD_WINDOW} chunks held")


EMULATED_QUEUE = UploadQueue()
TC_QUEUE = UploadQueue(UPLOAD_WINDOW, kernel_queues=True)


@dataclass(frozen=True)
class Simulated:
    """Each partition's acknowledgement, each query, and when the last acknowledgement came."""

    acked_ms: tuple[float, ...]
    queries: tuple[Query, ...]

    @property
    def upload_end_ms(self) -> float:
        return self.acked_ms[-1] if self.acked_ms else 0.0

    def queries_before_end(self) -> int:
        return sum(1 for query in self.queries if query.end_ms <= self.upload_end_ms)


def simulate(
    chain: UploadChain,
    timeline: Timeline,
    chunk_bytes: int,
    first_query: str = "wait",
    after: int = 5,
    contention: Contention = NO_CONTENTION,
    queue: UploadQueue = EMULATED_QUEUE,
) -> Simulated:
    """Replay ``timeline``'s plan on ``chain``: chunks of at most ``chunk_bytes``, queries back to back
    until ``after`` more have started once the last partition is acknowledged."""
    if contention.stages and len(contention.stages) != len(timeline.stages) + 1:
        raise ValueError(f"contention has {len(contention.stages)} stage costs; expected {len(timeline.stages) + 1}")
    env = simpy.Environment()
    uplink, downlink, worker = _FairLink(env, chain.rate), _FairLink(env, chain.rate), simpy.Resource(env)
    acked: list[float] = []
    first_ack = env.event()
    queries: list[Query] = []
    placements = [
        chain.state(timeline.plan.uploaded_after(stage, len(chain))).server_units()
        for stage in range(len(timeline.stages) + 1)
    ]

    def send(link: "_FairLink", nbytes: float):
        yield from link.carry(nbytes)
        yield env.timeout(chain.delay_ms)

    out = {"busy": False, "back": env.event(), "computing": False, "uploading": bool(timeline.stages)}
    """Whether a query's request is crossing, the event of its arrival, whether the client computes a
    layer, and whether the upload still runs."""

    unacknowledged = simpy.Container(env, capacity=UPLOAD_WINDOW, init=UPLOAD_WINDOW)
    held = simpy.Container(env, capacity=queue.held, init=queue.held)
    sent = simpy.Store(env)
    """The chunks the upload has given the link, each partition's commit after its last chunk, and
    None once every partition is given."""

    def upload():
        """Hands the link each chunk once the window has room and no request is crossing; the upload
        slows while the client computes, as the sending is the client's work."""
        for stage in timeline.stages:
            for size in _chunks(stage.param_bytes, chunk_bytes):
                for slots in (unacknowledged, held):
                    slot = slots.get(1)
                    if not slot.triggered:
                        yield slot
                while out["busy"]:
                    yield out["back"]
                sent.put((size, 1 / contention.upload_share if out["computing"] else 1.0))
            sent.put(stage)
        sent.put(None)

    def flow():
        """The upload's flow on the link: its chunks cross one after another, and each commit follows
        its partition's last chunk."""
        while True:
            item = yield sent.get()
            if item is None:
                break
            if isinstance(item, Stage):
                env.process(commit(item))
            else:
                size, slow = item
                yield from uplink.carry(size)
                yield env.timeout(size / chain.rate * (slow - 1))
                held.put(1)
                env.process(store())
        yield env.timeout(chain.delay_ms)
        out["uploading"] = False

    def store():
        """A chunk lands, waits for the worker between the queries it serves, and is acknowledged."""
        yield env.timeout(chain.delay_ms)
        with worker.request() as turn:
            yield turn
        if queue.kernel_queues:
            yield from downlink.clear()
        yield env.timeout(chain.delay_ms)
        unacknowledged.put(1)

    def commit(stage):
        yield env.timeout(chain.delay_ms)
        with worker.request() as turn:
            yield turn
            yield env.timeout(sum(chain.units[index].build_ms for index in stage.units))
        if queue.kernel_queues:
            yield from downlink.clear()
        yield from send(downlink, ACK_BYTES)
        acked.append(env.now)
        if not first_ack.triggered:
            first_ack.succeed()

    def away(remote: bool) -> None:
        out["busy"] = remote
        if not remote:
            out["back"].succeed()
            out["back"] = env.event()

    def pause(ms: float):
        yield env.timeout(ms)
        away(False)

    def query(stage: int):
        """One query: each range the worker runs is one request, whole, as the edge sends it; a chunk
        that lands meanwhile waits for the range's end. While the upload lasts, it pays its stage's
        cost: its compute scaled, its messages taking at least what they took beside the measured
        upload."""

        def paid() -> StageCost:
            return contention.stages[stage] if contention.stages and out["uploading"] else AS_PROFILED

        on_server = set(placements[stage])
        where, messaging = False, 0.0
        for remote, group in itertools.groupby(range(len(chain)), key=on_server.__contains__):
            indices = list(group)
            if remote != where:
                crossing, sending = chain.boundary_bytes[indices[0]], env.now
                if remote:
                    away(True)
                    if queue.kernel_queues:
                        env.process(pause(crossing / chain.rate))
                yield from send(uplink if remote else downlink, crossing)
                if remote and not queue.kernel_queues:
                    away(False)
                where, messaging = remote, messaging + env.now - sending
            if remote:
                with worker.request() as turn:
                    yield turn
                    server_ms = sum(chain.units[index].server_ms for index in indices)
                    yield env.timeout(server_ms * paid().server_scale)
            else:
                for index in indices:
                    out["computing"] = True
                    yield env.timeout(chain.units[index].client_ms * paid().client_scale)
                    out["computing"] = False
        if where:
            sending = env.now
            yield from send(downlink, chain.boundary_bytes[-1])
            messaging += env.now - sending
        if paid().messages_ms > messaging:
            yield env.timeout(paid().messages_ms - messaging)

    def client():
        if first_query == "wait" and timeline.stages:
            yield first_ack
        late = 0
        while True:
            done = len(acked) == len(timeline.stages)
            if done:
                if late == after:
                    return
                late += 1
            start, stage = env.now, len(acked)
            yield from query(stage)
            queries.append(Query(len(queries) + 1, start, env.now, stage))

    env.process(upload())
    env.process(flow())
    env.run(until=env.process(client()))
    return Simulated(tuple(acked), tuple(queries))


class _FairLink:
    """One direction of a link whose messages in flight share its rate equally (processor sharing):
    a message alone crosses at the full rate, two at once at half each."""

    def __init__(self, env: simpy.Environment, rate: float):
        self.env, self.rate = env, rate
        self._left: dict[simpy.Event, float] = {}
        self._since = 0.0
        self._changed = env.event()
        self._emptied = env.event()
        env.process(self._serve())

    def carry(self, nbytes: float):
        """A process step: returns once ``nbytes`` have crossed."""
        done = self.env.event()
        self._progress()
        self._left[done] = float(nbytes)
        if not self._changed.triggered:
            self._changed.succeed()
        yield done

    def clear(self):
        """A process step: returns once nothing is on the link (what a message queued behind the
        others waits for)."""
        while self._left:
            yield self._emptied

    def _progress(self) -> None:
        elapsed, self._since = self.env.now - self._since, self.env.now
        if self._left:
            share = elapsed * self.rate / len(self._left)
            for message in self._left:
                self._left[message] -= share

    def _serve(self):
        while True:
            if not self._left:
                yield self._changed
            else:
                soonest = max(0.0, min(self._left.values())) * len(self._left) / self.rate
                yield self.env.timeout(soonest) | self._changed
            if self._changed.triggered:
                self._changed = self.env.event()
            self._progress()
            for message, left in list(self._left.items()):
                if left <= 1e-6:
                    del self._left[message]
                    message.succeed()
            if not self._left and not self._emptied.triggered:
                self._emptied.succeed()
                self._emptied = self.env.event()


def _chunks(total: int, chunk_bytes: int):
    count = max(1, math.ceil(total / chunk_bytes))
    for number in range(count):
        yield min(chunk_bytes, total - number * chunk_bytes)
