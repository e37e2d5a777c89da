"""The edge's side of an incremental upload (IONN, seed 004): upload a model's weights to a worker
that holds only its architecture, partition by partition, while queries run back to back, each
through the partitions acknowledged when it starts.

The upload has a socket of its own (a second flow on the link, as IONN's client has) and a thread of
its own; the queries run on the caller's thread. Each chunk is one parameter's bytes from an offset,
sent as they lie in the edge's own tensor (no copy), at most ``chunk_bytes`` long; at most
``UPLOAD_WINDOW`` chunks are unacknowledged, so a link shaped by tc holds the rest back in this
process, not in its queue. After a partition's last chunk comes its commit; the worker's
acknowledgement of it is when queries may use it.

The upload yields to a query's request: from when a query sends one until it would have crossed the
link alone, no chunk is sent, so the request shares the link only with the chunks already in flight.
Sharing the link evenly instead, as two TCP flows through one queue do, made each query during the
upload wait up to twice as long for its request (longer still while its connection's window grew
again after each idle spell), for little gain in the upload; pausing the upload for the whole round
trip starved it (the queries run back to back).

Under an emulated link the two flows hold their messages against one budget (``SharedLink``), which
splits the rate evenly between the messages on it at once, so together they never get more than the
link. Replies come back on the other direction, held here as the edge driver holds them (a query's
result), or too small to matter (acknowledgements).

A query is placed as the planner placed it for its stage: the units the plan's fastest query runs on
the server go there (one round trip per range), the rest run here.

Before the first repeat, the edge measures what uploading costs its queries (``measure_contention``),
beside an upload to a throwaway session, so that the replay of the plan can expect it: on a small
client the upload takes a large share of the processor.
"""

import contextlib
import math
import secrets
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch.utils import _pytree as pytree

from harness.errors import ExperimentFailed
from harness.model import SplitGraph
from harness.model.analysis import attribute
from harness.partition.upload import PlannedUpload, UploadChain
from harness.partition.upload.chain import runs
from harness.partition.upload.simulate import (
    AS_PROFILED,
    EMULATED_QUEUE,
    NO_CONTENTION,
    TC_QUEUE,
    Contention,
    StageCost,
    simulate,
)
from harness.results.uploads import PartitionRecord, QueryRecord
from harness.wire.compression import Compression
from harness.wire.frames import (
    UPLOAD_WINDOW,
    Chunk,
    Close,
    Commit,
    Committed,
    Error,
    Infer,
    Limits,
    ModelSpec,
    Open,
    Opened,
    Stored,
    TensorSpec,
    decode_reply,
    encode,
)
from harness.wire.keys import ClientKeys
from harness.wire.link import EmulatedLink, hold_until
from harness.wire.tensors import pack, unpack
from harness.worker.agreement import agrees
from harness.worker.client import WorkerClient, WorkerError, WorkerSilent

CONTENTION_WARMUP_S = 0.2
"""How long a throwaway upload runs alone before the client times itself beside it."""
CONTENTION_QUERIES = 6
"""How many queries at each stage the measure beside an upload times."""
CONTENTION_UPLOADS = 4
"""The most throwaway uploads one measure makes."""
POLL_MS = 1
SPIN_NS = 200_000
"""The last stretch of a hold is spun, not slept: sleeps overshoot by tens of microseconds."""


class SharedLink:
    """One direction of an emulated link that several flows share as a shaped queue shares it between
    TCP flows: every message on it at once gets an equal share of the rate (a message alone the
    whole rate), so together they never get more than the link. Each sender holds its message until
    it would have crossed (plus the delay), then sends it. Thread-safe.

    The share is tracked as the bytes each message in flight has been served so far (``_served``);
    a message of ``n`` bytes that joins at ``s`` has crossed when that reaches ``s + n``."""

    def __init__(self, rate: float, delay_ns: int = 0):
        self.rate, self.delay_ns = rate, delay_ns
        self._lock = threading.Lock()
        self._served = 0.0
        self._since = time.monotonic_ns()
        self._active = 0

    def hold(self, nbytes: int, wait: Callable[[float], None] = time.sleep) -> None:
        """Return when ``nbytes`` handed to the link now would have crossed; ``wait(seconds)`` passes
        the time meanwhile (a sender with replies to read can read them)."""
        with self._lock:
            self._advance()
            finish = self._served + nbytes
            self._active += 1
        try:
            while True:
                with self._lock:
                    self._advance()
                    left_ns = (finish - self._served) * self._active / self.rate * 1e9
                if left_ns <= 0:
                    break
                if left_ns > SPIN_NS:
                    wait(min(left_ns - SPIN_NS / 2, POLL_MS * 1e6) / 1e9)
        finally:
            with self._lock:
                self._advance()
                self._active -= 1
        hold_until(time.monotonic_ns() + self.delay_ns)

    def _advance(self) -> None:
        now = time.monotonic_ns()
        if self._active:
            self._served += (now - self._since) / 1e9 * self.rate / self._active
        self._since = now


class RequestGate:
    """When the upload may send its next chunk: a query's request goes first, for as long as it takes
    the link alone (under tc, its bytes over the rate from when it was sent)."""

    def __init__(self):
        self._until_ns = 0

    def close(self) -> None:
        self._until_ns = 2**63

    def open_after(self, seconds: float) -> None:
        self._until_ns = time.monotonic_ns() + round(seconds * 1e9)

    def is_open(self) -> bool:
        return time.monotonic_ns() >= self._until_ns


@dataclass(frozen=True)
class UploadSettings:
    chunk_bytes: int
    first_query: str = "wait"
    after: int = 5
    timeout_s: float = 60.0


class QueryFigures(NamedTuple):
    """One query as the edge timed it, nanoseconds on its clock."""

    start_ns: int
    end_ns: int
    round_trips: int
    bytes_up: int
    bytes_down: int
    edge_ns: int
    cloud_ns: int
    agrees: bool


@dataclass(frozen=True)
class UploadOutcome:
    partitions: list[PartitionRecord]
    queries: list[QueryRecord]
    digest: str
    """The worker's digest of the uploaded weights (empty unless every parameter went up)."""


class _Uploader(threading.Thread):
    """Sends the plan's partitions in chunks, then each one's commit, and notes the acknowledgements."""

    def __init__(self, client: WorkerClient, session: str, partitions, tensors, settings: "UploadSettings", link, gate):
        super().__init__(name="upload", daemon=True)
        self.gate: RequestGate = gate
        self.client = client
        self.session = session
        self.partitions = partitions
        self.tensors = tensors
        self.chunk_bytes = settings.chunk_bytes
        self.timeout_ns = round(settings.timeout_s * 1e9)
        self.link: SharedLink | None = link
        self.stage = 0
        self.acked_ns: list[int] = []
        self.build_ns: list[int] = []
        self.sent_ns: list[tuple[int, int, int]] = []
        self.digest = ""
        self.error: BaseException | None = None
        self.started_ns = 0
        self.first_ack = threading.Event()
        self.finished = threading.Event()
        self.stop = threading.Event()
        """Set to end the upload after the chunk in hand (a measurement's throwaway upload)."""
        self.stored_bytes = 0
        self.computing_ns = self.computing_bytes = 0
        """How long queries computed on the client beside this upload, and the bytes acknowledged
        meanwhile (noted by the queries of a measurement)."""
        self._pending: dict[int, str] = {}
        self._sizes: dict[int, int] = {}
        self._heard_ns = 0

    def run(self) -> None:
        try:
            self.started_ns = self._heard_ns = time.monotonic_ns()
            for number, names in enumerate(self.partitions, start=1):
                first = time.monotonic_ns()
                chunks = 0
                for name in names:
                    dtype, shape, data = self.tensors[name]
                    for offset in range(0, max(len(data), 1), self.chunk_bytes):
                        if self.stop.is_set():
                            break
                        piece = data[offset : offset + self.chunk_bytes]
                        size = len(piece)
                        value = TensorSpec(
                            name="chunk", dtype="uint8", shape=(size,), codec="none", nbytes=size, wire=size
                        )
                        request = Chunk(
                            id=self.client.next_id(),
                            session=self.session,
                            param=name,
                            dtype=dtype,
                            shape=shape,
                            offset=offset,
                            values=(value,),
                        )
                        self._send(encode(request, [piece]), request.id, "chunk")
                        self._sizes[request.id] = size
                        chunks += 1
                if self.stop.is_set():
                    break
                commit = Commit(id=self.client.next_id(), session=self.session, stage=number, params=tuple(names))
                self._send(encode(commit), commit.id, "commit")
                self.sent_ns.append((first, time.monotonic_ns(), chunks))
            while self._pending:
                self._receive(None)
        except BaseException as error:  # the query loop raises it on the caller's thread
            self.error = error
        finally:
            self.finished.set()
            self.first_ack.set()

    def _send(self, frames: list, request_id: int, kind: str) -> None:
        while sum(1 for pending in self._pending.values() if pending == "chunk") >= UPLOAD_WINDOW:
            self._receive(None)
        while not self.gate.is_open():
            self._read_for(POLL_MS / 1e3)
        if self.link is not None:
            self.link.hold(sum(len(frame) for frame in frames), self._read_for)
        self.client.socket.send_multipart(frames, copy=False)
        self._pending[request_id] = kind

    def _read_for(self, seconds: float) -> None:
        """Read the replies that come within ``seconds`` (while the link holds a chunk)."""
        deadline = time.monotonic_ns() + round(seconds * 1e9)
        while time.monotonic_ns() < deadline:
            self._receive(deadline)

    def _receive(self, deadline_ns: int | None) -> None:
        """Take a reply that arrives before ``deadline_ns`` (None: wait a moment for one)."""
        wait_ms = POLL_MS if deadline_ns is None else math.ceil((deadline_ns - time.monotonic_ns()) / 1e6)
        if wait_ms <= 0:
            return
        if not self.client.socket.poll(min(wait_ms, POLL_MS)):
            if deadline_ns is None and time.monotonic_ns() - self._heard_ns > self.timeout_ns:
                raise WorkerSilent(f"worker at {self.client.endpoint} stopped acknowledging the upload")
            return
        frames = self.client.socket.recv_multipart(copy=False)
        arrived = self._heard_ns = time.monotonic_ns()
        reply, _ = decode_reply(frames, self.client.limits)
        if isinstance(reply, Error):
            raise WorkerError(self.client.endpoint, reply.code, reply.message)
        self._pending.pop(reply.id, None)
        self.stored_bytes += self._sizes.pop(reply.id, 0)
        if isinstance(reply, Committed):
            self.acked_ns.append(arrived)
            self.build_ns.append(reply.build_ns)
            self.digest = reply.digest
            self.stage = reply.stage
            self.first_ack.set()
        elif not isinstance(reply, Stored):
            raise ExperimentFailed(f"worker at {self.client.endpoint} answered a chunk with '{reply.kind}'")


class UploadExperiment:
    """One run's plan on one worker: ``run(repeat, inputs)`` uploads the model to a fresh session
    while running queries, and returns what happened."""

    def __init__(
        self,
        endpoint: str,
        keys: ClientKeys | None,
        split: SplitGraph,
        spec: ModelSpec,
        chain: UploadChain,
        planned: PlannedUpload,
        settings: UploadSettings,
        run: str,
        link: EmulatedLink | None = None,
        plan_label: str = "",
        rate: float = math.inf,
    ):
        self.endpoint, self.keys = endpoint, keys
        self.split, self.spec, self.chain, self.planned = split, spec, chain, planned
        self.settings, self.run_id, self.emulated = settings, run, link
        self.rate = link.rate if link is not None else rate
        """The link's bytes per second, however it is shaped (infinite where nothing shapes it)."""
        self.plan_label = plan_label or planned.plan.planner
        timeline = planned.timeline
        self.predicted_queries = timeline.queries_before_end(settings.first_query)
        self.contention: Contention | None = None
        """What uploading costs this client, measured before the first repeat."""
        self.client_scale = 1.0
        """The client's compute beside an upload over its profile, as the contention measure found it."""
        self.simulated_queries = 0
        units = chain.units
        self.server_units = [
            chain.state(planned.plan.uploaded_after(stage, len(chain))).server_units()
            for stage in range(len(timeline.stages) + 1)
        ]
        """The units each stage's query runs on the worker, as the planner placed them."""
        self.placements = [
            [(units[first].first, units[end - 1].last + 1) for first, end in runs(server)]
            for server in self.server_units
        ]
        self.partitions = self._partition_params()
        self.tensors = {
            name: tensor_bytes(attribute(split.graph_module, name)) for names in self.partitions for name in names
        }
        self._segments: dict[tuple[int | None, int | None], torch.nn.Module] = {}
        self._gate = RequestGate()
        self.worker_device: str | None = None
        """Where the worker computes, as it says when the first session opens: a GPU's answers agree
        within a tolerance, a CPU's exactly (``agreement.py``); a query before any session is judged
        as a CPU's."""

    def run(self, repeat: int, inputs: Sequence[torch.Tensor]) -> UploadOutcome:
        if self.contention is None:
            self.contention = self.measure_contention(inputs[0]) if self.partitions else NO_CONTENTION
            settings, timeline = self.settings, self.planned.timeline
            queue = EMULATED_QUEUE if self.emulated is not None else TC_QUEUE
            self.simulated_queries = simulate(
                self.chain, timeline, settings.chunk_bytes, settings.first_query, settings.after, self.contention, queue
            ).queries_before_end()
        with self._session() as (session, queries, upload):
            return self._run(repeat, inputs, session, queries, upload)

    @contextlib.contextmanager
    def _session(self):
        """A fresh session on the worker, with a client for queries and one for the upload; closed after."""
        session = secrets.token_hex(16)
        limits, timeout = Limits(), self.settings.timeout_s
        with (
            WorkerClient(self.endpoint, self.keys, limits) as queries,
            WorkerClient(self.endpoint, self.keys, limits) as upload,
        ):
            request = Open(id=queries.next_id(), session=session, model=self.spec)
            opened: Opened = queries.exchange(encode(request), request.id, timeout).reply
            here = sum(tensor.numel() * tensor.element_size() for tensor in self._all_tensors())
            if opened.param_bytes != here:
                raise ExperimentFailed(
                    f"worker at {self.endpoint} builds {self.spec.name} with {opened.param_bytes:,} bytes of weights, "
                    f"this edge with {here:,}: give both hosts the same harness and torch"
                )
            if self.worker_device is None:
                self.worker_device = queries.ping(timeout).device
            try:
                yield session, queries, upload
            finally:
                with contextlib.suppress(ExperimentFailed):
                    close = Close(id=queries.next_id(), session=session)
                    queries.exchange(encode(close), close.id, timeout)

    def _shared_link(self) -> SharedLink | None:
        """The budget the upload and the queries share under an emulated link (None under tc)."""
        return SharedLink(self.emulated.rate, self.emulated.delay_ns) if self.emulated is not None else None

    def measure_contention(self, sample: torch.Tensor) -> Contention:
        """What uploading costs this client's queries, measured beside uploads of its weights to
        throwaway sessions, each once it has had ``CONTENTION_WARMUP_S`` to reach its pace:
        ``CONTENTION_QUERIES`` queries back to back, as a run's queries follow each other, at each
        stage a query may use while the upload lasts (the client alone only where the first query
        does not wait; never the last stage), placed as the plan places them, through the worker's
        own copy of the model (the throwaway session has no weights to run); and the share of the
        link's rate the upload reached while they computed here. Each stage's queries follow one
        untimed: queries that took the stages in turn came out 6 to 10% slower than the run's in a
        lab run compared stage by stage. Each stage's query also runs once before any upload:
        building its segments is not what a query pays. Only what ends before its upload does
        counts, and a new throwaway upload takes over until everything is timed or
        ``CONTENTION_UPLOADS`` have run (a small model's upload is over within a few runs on a
        small client).

        Each figure is the mean of its runs: the stalls that sharing the processor brings hit a few
        of them, which a median leaves out. A stage's query gives its client and worker compute over
        their profiles, and the time its messages took: on a small client they wait for the
        processor the upload holds, and on a lab's shared host the worker's compute slows too. A
        profile taken layer by layer beside the upload, as this measure once was, saw the client's
        compute alone: in the lab a query's messages took half again what the link gives them while
        the upload ran, and the worker's ranges a third longer, which it missed."""
        every = {name: tensor_bytes(attribute(self.split.graph_module, name)) for name in self.split.tensor_names}
        stages = range(len(self.planned.timeline.stages) + 1)
        during = stages[0 if self.settings.first_query == "local" else 1 : -1]
        turns = [stage for stage in during for _ in range(CONTENTION_QUERIES)]
        answers: dict[int, list[QueryFigures]] = {stage: [] for stage in stages}
        uploaded = window_ns = 0
        for attempt in range(CONTENTION_UPLOADS):
            if not turns:
                break
            with self._session() as (session, queries, upload):
                if attempt == 0:
                    for stage in during:
                        self.query(sample, stage, None, queries, None, None)
                link = self._shared_link()
                uploader = _Uploader(upload, session, [list(every)], every, self.settings, link, self._gate)
                uploader.start()
                try:
                    uploader.finished.wait(CONTENTION_WARMUP_S)
                    warm = None
                    while turns and not uploader.finished.is_set():
                        if turns[0] != warm:
                            self.query(sample, turns[0], None, queries, link, None)
                            warm = turns[0]
                            continue
                        computed = uploader.computing_ns, uploader.computing_bytes
                        answer = self.query(sample, turns[0], None, queries, link, None, uploader)
                        if uploader.finished.is_set():
                            break
                        window_ns += uploader.computing_ns - computed[0]
                        uploaded += uploader.computing_bytes - computed[1]
                        answers[turns.pop(0)].append(answer)
                finally:
                    uploader.stop.set()
                    uploader.join()
            if uploader.error is not None:
                raise uploader.error
        if not any(answers.values()):
            return NO_CONTENTION
        share = 1.0 if math.isinf(self.rate) or not window_ns else min(1.0, uploaded / (window_ns / 1e9) / self.rate)
        self.client_scale = self._client_scale(answers)
        costs = tuple(self._stage_cost(stage, answers[stage]) for stage in stages)
        return Contention(stages=costs, upload_share=max(share, 1e-3))

    def _stage_cost(self, stage: int, answers: list[QueryFigures]) -> StageCost:
        """A stage's cost from its queries beside an upload (none timed: as profiled)."""
        if not answers:
            return AS_PROFILED
        client_ms, server_ms = self._profiled_ms(stage)
        edge = statistics.fmean(answer.edge_ns for answer in answers) / 1e6
        cloud = statistics.fmean(answer.cloud_ns for answer in answers) / 1e6
        total = statistics.fmean(answer.end_ns - answer.start_ns for answer in answers) / 1e6
        return StageCost(
            client_scale=edge / client_ms if client_ms > 0 and edge > 0 else 1.0,
            server_scale=cloud / server_ms if server_ms > 0 and cloud > 0 else 1.0,
            messages_ms=max(0.0, total - edge - cloud),
        )

    def _profiled_ms(self, stage: int) -> tuple[float, float]:
        """A query's compute at ``stage`` by the profiles: on the client, on the worker."""
        remote = set(self.server_units[stage])
        units = self.chain.units
        client_ms = sum(unit.client_ms for index, unit in enumerate(units) if index not in remote)
        return client_ms, sum(units[index].server_ms for index in remote)

    def _client_scale(self, answers: dict[int, list[QueryFigures]]) -> float:
        """The client's compute beside the upload over its profile, over every query the measure
        timed (1 where it timed none)."""
        edge_ms = sum(answer.edge_ns for timed in answers.values() for answer in timed) / 1e6
        profiled = sum(self._profiled_ms(stage)[0] * len(timed) for stage, timed in answers.items())
        return edge_ms / profiled if profiled > 0 and edge_ms > 0 else 1.0

    def _run(self, repeat, inputs, session, queries: WorkerClient, upload: WorkerClient) -> UploadOutcome:
        link = self._shared_link()
        uploader = _Uploader(upload, session, self.partitions, self.tensors, self.settings, link, self._gate)
        expected = [self.reference(sample) for sample in inputs]
        uploader.start()
        if self.settings.first_query == "wait" and self.partitions:
            uploader.first_ack.wait()
        records: list[tuple] = []
        late = 0
        while uploader.error is None:
            stage, index = uploader.stage, len(records) % len(inputs)
            if stage == len(self.partitions):
                if late == self.settings.after:
                    break
                late += 1
            answer = self.query(inputs[index], stage, session, queries, link, expected[index])
            records.append((len(records) + 1, index, stage, *answer))
        uploader.join()
        if uploader.error is not None:
            raise uploader.error
        if uploader.digest and uploader.digest != self.split.weights_digest:
            raise ExperimentFailed(
                f"the weights uploaded to {self.endpoint} have digest {uploader.digest}, "
                f"the edge's {self.split.weights_digest}: the upload lost or changed bytes"
            )
        return self._outcome(repeat, uploader, records)

    def query(
        self,
        inputs,
        stage: int,
        session: str | None,
        client: WorkerClient,
        link: SharedLink | None,
        expected,
        beside: "_Uploader | None" = None,
    ) -> QueryFigures:
        """One query through the partitions of ``stage``, and whether its output equals ``expected``
        (if given). The bytes that ``beside`` got acknowledged while this query computed here are
        added to its tally."""
        start = time.monotonic_ns()
        values: tuple = (inputs,)
        edge = cloud = up = down = 0
        position, last = 0, len(self.split.layers)

        def local(values: tuple, first: int, end: int) -> tuple:
            nonlocal edge
            began, stored = time.monotonic_ns(), beside.stored_bytes if beside is not None else 0
            values = self._local(first, end, values)
            took = time.monotonic_ns() - began
            edge += took
            if beside is not None:
                beside.computing_ns += took
                beside.computing_bytes += beside.stored_bytes - stored
            return values

        for first, end in self.placements[stage]:
            if first > position:
                values = local(values, position, first)
            values, sent, received, compute = self._remote(first, end, values, session, client, link)
            up, down, cloud, position = up + sent, down + received, cloud + compute, end
        if position < last:
            values = local(values, position, last)
        ended = time.monotonic_ns()
        agreed = expected is None or agrees(values, expected, self.worker_device or "cpu")
        return QueryFigures(start, ended, len(self.placements[stage]), up, down, edge, cloud, agreed)

    def _local(self, start: int, end: int, values: tuple):
        """Layers ``start`` to ``end`` here: the live values at ``end`` (the model's output at the last)."""
        last = len(self.split.layers)
        key = (None if start == 0 else start, None if end == last else end)
        if key not in self._segments:
            self._segments[key] = self.split.segment(*key)
        with torch.inference_mode():
            produced = self._segments[key](*values)
        return produced if end == last or isinstance(produced, tuple) else (produced,)

    def _remote(self, start: int, end: int, values: tuple, session, client: WorkerClient, link: SharedLink | None):
        """Layers ``start`` to ``end`` on the worker: the values at ``end``, bytes up and down, its compute."""
        last = len(self.split.layers)
        names = [crossing.name for crossing in self.split.live(start)]
        specs, buffers, _ = pack(list(values), names, Compression())
        request = Infer(
            id=client.next_id(),
            model=self.spec,
            cut=start,
            values=specs,
            end=None if end == last else end,
            session=session,
        )
        frames = encode(request, buffers)
        wire = sum(len(frame) for frame in frames)
        self._gate.close()
        try:
            if link is not None:
                link.hold(wire)
        finally:
            self._gate.open_after(0 if link is not None or math.isinf(self.rate) else wire / self.rate)
        exchange = client.exchange(frames, request.id, self.settings.timeout_s)
        reply = exchange.reply
        if self.emulated is not None:
            in_transit = exchange.received_ns - exchange.sent_ns - reply.timings.busy_ns
            self.emulated.hold_incoming(exchange.wire_bytes, in_transit)
        leaves = unpack(reply.values, exchange.buffers, request.id)
        produced = pytree.tree_unflatten(leaves, self.split.output_structure) if end == last else tuple(leaves)
        return produced, wire, exchange.wire_bytes, reply.timings.compute_ns

    def reference(self, inputs):
        """The whole model's output for ``inputs``, run here: what every query must answer."""
        key = (None, None)
        if key not in self._segments:
            self._segments[key] = self.split.segment(None, None)
        with torch.inference_mode():
            return self._segments[key](inputs)

    def _partition_params(self) -> list[list[str]]:
        """The parameter names of each partition, in upload order; tensors no unit reads go with the
        last partition when the plan uploads every unit that has weights (so the digests can agree)."""
        chain, plan = self.chain, self.planned.plan
        partitions = [[name for index in units for name in chain.units[index].params] for units in plan.partitions]
        carried = {name for names in partitions for name in names}
        if partitions and {index for units in plan.partitions for index in units} == set(chain.costly):
            partitions[-1].extend(name for name in self.split.tensor_names if name not in carried)
        return partitions

    def _all_tensors(self) -> list[torch.Tensor]:
        return [attribute(self.split.graph_module, name) for name in self.split.tensor_names]

    def _outcome(self, repeat: int, uploader: _Uploader, records: list[tuple]) -> UploadOutcome:
        origin = uploader.started_ns
        end_ns = (uploader.acked_ns[-1] - origin) if uploader.acked_ns else 0
        timeline = self.planned.timeline
        partitions = [
            PartitionRecord(
                run=self.run_id,
                repeat=repeat,
                plan=self.plan_label,
                partition=number,
                units=",".join(self.chain.units[index].name for index in stage.units),
                params=len(self.partitions[number - 1]),
                param_bytes=sum(len(self.tensors[name][2]) for name in self.partitions[number - 1]),
                chunks=uploader.sent_ns[number - 1][2],
                sent_ns=uploader.sent_ns[number - 1][0] - origin,
                last_sent_ns=uploader.sent_ns[number - 1][1] - origin,
                acked_ns=uploader.acked_ns[number - 1] - origin,
                build_ns=uploader.build_ns[number - 1],
                predicted_done_ns=round(stage.done_ms * 1e6),
                predicted_latency_ns=round(stage.latency_ms * 1e6),
                predicted_queries=self.predicted_queries,
                simulated_queries=self.simulated_queries,
                client_scale=self.client_scale,
                upload_share=self.contention.upload_share,
                decision_ns=self.planned.decision_ns,
            )
            for number, stage in enumerate(timeline.stages, start=1)
        ]
        queries = [
            QueryRecord(
                run=self.run_id,
                repeat=repeat,
                plan=self.plan_label,
                query=number,
                input=index,
                start_ns=start - origin,
                end_ns=ended - origin,
                stage=stage,
                round_trips=trips,
                bytes_up=up,
                bytes_down=down,
                edge_ns=edge,
                cloud_ns=cloud,
                transfer_ns=ended - start - edge - cloud,
                predicted_ns=round(timeline.latency_at(stage) * 1e6),
                before_end=ended - origin <= end_ns,
                agrees=agrees,
            )
            for number, index, stage, start, ended, trips, up, down, edge, cloud, agrees in records
        ]
        return UploadOutcome(partitions, queries, uploader.digest)


def tensor_bytes(tensor: torch.Tensor) -> tuple[str, tuple[int, ...], memoryview]:
    """What a chunk says of a tensor (dtype, shape) and its bytes as they lie in memory."""
    flat = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    return str(tensor.dtype).removeprefix("torch."), tuple(tensor.shape), memoryview(flat.numpy())
