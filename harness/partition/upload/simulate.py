"""A plan replayed as the system runs it, without hardware: the upload in chunks and the queries on one
link, one worker, one client, as a discrete-event simulation (SimPy).

What the planners' prediction leaves out and this puts in, as the edge runs it: the upload yields to
a query's request (no chunk is sent while one crosses), so the request shares the link only with the
chunk already on it, each message on the link at once getting an equal share of its rate; the worker does one thing at a
time, so building a partition and a query's server part wait for each other; a partition counts from
its acknowledgement, which comes back over the link, while the next partition's chunks go on. A query
runs through the latest acknowledged partition, placed as the planners place it. The link's delay is
added to every message.
"""

import math
from dataclasses import dataclass

import simpy

from harness.partition.upload.chain import UploadChain
from harness.partition.upload.timeline import Query, Timeline

ACK_BYTES = 64
"""About what an acknowledgement costs on the wire."""


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
    chain: UploadChain, timeline: Timeline, chunk_bytes: int, first_query: str = "wait", after: int = 5
) -> Simulated:
    """Replay ``timeline``'s plan on ``chain``: chunks of at most ``chunk_bytes``, queries back to back
    until ``after`` more have started once the last partition is acknowledged."""
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

    out = {"busy": False, "back": env.event()}
    """Whether a query's request is crossing, and the event of its arrival."""

    def upload():
        for stage in timeline.stages:
            for size in _chunks(stage.param_bytes, chunk_bytes):
                while out["busy"]:
                    yield out["back"]
                yield from send(uplink, size)
            env.process(commit(stage))

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
                yield env.timeout(unit.client_ms)
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
