"""A plan replayed as the system runs it, without hardware: the upload in chunks and the queries on one
link, one worker, one client, as a discrete-event simulation (SimPy).

What the planners' prediction leaves out and this puts in, as the edge runs it: the upload yields to
a query's request (no chunk is sent while one crosses), so the request shares the link only with the
chunk already on it, each message on the link at once getting an equal share of its rate. Under tc
too: TCP keeps little of each flow in the shaped queue (a replay with the upload's four chunks in
flight queued ahead of every request expected 11 queries where 13 finished, and each query 8% slower
than measured; this one 12, and each query within 4%). The worker does one thing at a time, so
building a partition and a query's server part wait for each other; a partition counts from its
acknowledgement, which comes back over the link, while the next partition's chunks go on. A query
runs through the latest acknowledged partition, placed as the planners place it. The link's delay is
added to every message.

A client whose processor is small pays for its upload in compute (``Contention``): while the upload
runs, its share of the processor goes to sending (the network stack, the encryption, the messages),
so its layers take longer than they did alone, and the upload slows while a layer computes. Both are
measured on the client before the upload (``UploadExperiment.measure_contention``: its profile taken
again beside an upload); a client with cores to spare measures neither.
"""

import math
from dataclasses import dataclass

import simpy

from harness.partition.upload.chain import UploadChain
from harness.partition.upload.timeline import Query, Timeline

ACK_BYTES = 64
"""About what an acknowledgement costs on the wire."""


@dataclass(frozen=True)
class Contention:
    """What the upload costs the client's compute, as measured: ``client_ms``, each unit's time on the
    client while the upload runs (empty: as profiled); ``upload_share``, the share of the link's rate
    the upload reaches while the client computes."""

    client_ms: tuple[float, ...] = ()
    upload_share: float = 1.0

    def __post_init__(self):
        if not (all(ms >= 0 for ms in self.client_ms) and 0 < self.upload_share <= 1):
            raise ValueError(f"contention {self}: expected client times >= 0 and upload_share in (0, 1]")


NO_CONTENTION = Contention()


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
) -> Simulated:
    """Replay ``timeline``'s plan on ``chain``: chunks of at most ``chunk_bytes``, queries back to back
    until ``after`` more have started once the last partition is acknowledged."""
    if contention.client_ms and len(contention.client_ms) != len(chain):
        raise ValueError(f"contention has {len(contention.client_ms)} client times; expected {len(chain)} units")
    uploading_ms = contention.client_ms or tuple(unit.client_ms for unit in chain.units)
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

    def upload():
        for stage in timeline.stages:
            for size in _chunks(stage.param_bytes, chunk_bytes):
                while out["busy"]:
                    yield out["back"]
                slow = 1 / contention.upload_share if out["computing"] else 1.0
                yield from send(uplink, size)
                yield env.timeout(size / chain.rate * (slow - 1))
            env.process(commit(stage))
        out["uploading"] = False

    def commit(stage):
        with worker.request() as turn:
            yield turn
            yield env.timeout(sum(chain.units[index].build_ms for index in stage.units))
        yield from send(downlink, ACK_BYTES)
        acked.append(env.now)
        if not first_ack.triggered:
            first_ack.succeed()

    def away(remote: bool) -> None:
        out["busy"] = remote
        if not remote:
            out["back"].succeed()
            out["back"] = env.event()

    def query(stage: int):
        on_server = set(placements[stage])
        where = False
        for index, unit in enumerate(chain.units):
            remote = index in on_server
            if remote != where:
                if remote:
                    away(True)
                yield from send(uplink if remote else downlink, chain.boundary_bytes[index])
                if remote:
                    away(False)
                where = remote
            if remote:
                with worker.request() as turn:
                    yield turn
                    yield env.timeout(unit.server_ms)
            else:
                out["computing"] = True
                yield env.timeout(uploading_ms[index] if out["uploading"] else unit.client_ms)
                out["computing"] = False
        if where:
            yield from send(downlink, chain.boundary_bytes[-1])

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
        env.process(self._serve())

    def carry(self, nbytes: float):
        """A process step: returns once ``nbytes`` have crossed."""
        done = self.env.event()
        self._progress()
        self._left[done] = float(nbytes)
        if not self._changed.triggered:
            self._changed.succeed()
        yield done

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


def _chunks(total: int, chunk_bytes: int):
    count = max(1, math.ceil(total / chunk_bytes))
    for number in range(count):
        yield min(chunk_bytes, total - number * chunk_bytes)
