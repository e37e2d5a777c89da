"""The edge driver: run the head, send what crosses the cut, wait for the tail's output, record it.

One record per inference, emitted as soon as the inference ends. The edge's own clock times its
head, its encoding and its decoding; the worker's reply carries the worker's times; the transfer
time is what remains of the end-to-end time, so a shaped (or emulated) link shows up there alone.

An inference the worker could not finish (it died, restarted or went quiet) is reported as a
``FailedInference`` and tried again, per ``RetryPolicy``, once the worker answers pings again; the
restarted worker's tails are prepared and warmed up anew, so no record pays for a restart.

A pipeline is the same inference with more hops: the edge runs up to the first cut and the workers
each run to the next, forwarding among themselves; the last replies to the edge. Its record is the
two-host record with the workers' times summed, and one ``HopRecord`` per worker beside it. Under
an emulated link every sender holds what it sends (the edge its request, each worker what it
forwards, the last its reply), since only the sender knows when a message left.
"""

import itertools
import math
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import msgspec
import torch
import zmq
from torch.utils import _pytree as pytree

from harness.energy import EnergyMeter, Mark
from harness.errors import BadInput, ExperimentFailed
from harness.exits.progressive import ProgressivePart
from harness.model import Head, SplitGraph
from harness.results import FailedInference, InferenceRecord
from harness.results.records import HopRecord
from harness.wire.codecs import Coded, CutCodec
from harness.wire.compression import Compression
from harness.wire.frames import (
    MAX_HOPS,
    CompressionSpec,
    ExitsSpec,
    Hop,
    HopFigures,
    Infer,
    ModelSpec,
    Pace,
    encode,
)
from harness.wire.keys import ClientKeys
from harness.wire.link import EmulatedLink
from harness.wire.tensors import dtype_name, pack, unpack
from harness.worker.client import ReplyGroup, WorkerClient, WorkerUnavailable
from harness.worker.hostinfo import peak_rss_bytes


@dataclass(frozen=True)
class EdgeExits:
    """Progressive inference (seed 002): the edge ``part`` (the model's input to the cut, with its
    exits) runs instead of the plain head, and a sample no exit of it takes goes to the worker with
    ``cloud``, the exits of the worker's part; both leave at confidence strictly above ``threshold``.
    With ``carry`` (exits placed across the cut, the baseline the seed argues against) the edge
    tries none of its part's exits: every sample goes to the worker with their inputs as well, and
    the worker tries them first (``cloud.carried``)."""

    part: ProgressivePart
    cloud: ExitsSpec
    threshold: float
    carry: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    """``timeout_s``: longest wait for one reply before the worker is taken as gone (a dropped
    connection is noticed at once); ``attempts``: how often one inference is tried again;
    ``wait_s``: how long to wait for the worker to answer again (its restart) before giving up."""

    attempts: int = 2
    timeout_s: float = 60.0
    wait_s: float = 120.0


@dataclass(frozen=True)
class LinkSettings:
    """The link between edge and cloud as it is shaped, recorded with every inference: ``rate``
    (bytes per second, infinite where nothing limits it) and ``delay_ns`` hold whether tc or this
    driver (``shaping: emulated``) applies them; ``none`` is a link nobody shapes."""

    shaping: str = "none"
    rate: float = math.inf
    delay_ns: int = 0

    @cached_property
    def emulated(self) -> EmulatedLink | None:
        """The pacing this driver applies itself, for an emulated link."""
        return EmulatedLink(self.rate, self.delay_ns) if self.shaping == "emulated" else None


def connect_pipeline(endpoints: Sequence[str], keys: ClientKeys | None = None, limits=None) -> list[WorkerClient]:
    """Clients for the workers of a pipeline, in hop order, sharing one fresh routing id so that the
    last hop's reply (or any hop's error) finds this edge."""
    if not 1 <= len(endpoints) <= MAX_HOPS:
        raise BadInput(f"a pipeline of {len(endpoints)} workers: expected 1 to {MAX_HOPS}")
    identity = secrets.token_bytes(16)
    clients: list[WorkerClient] = []
    try:
        for endpoint in endpoints:
            clients.append(WorkerClient(endpoint, keys, limits, identity))
    except BaseException:
        for client in clients:
            client.close()
        raise
    return clients


class EdgeDriver:
    """Runs heads of ``split`` here and the rest on the worker behind ``hops`` (one client, or the
    clients of a pipeline from ``connect_pipeline``, in hop order)."""

    def __init__(
        self,
        hops: WorkerClient | Sequence[WorkerClient],
        split: SplitGraph,
        spec: ModelSpec,
        compression: Compression | None = None,
        link: LinkSettings | None = None,
        device: str = "cpu",
        timeout_s: float = 60.0,
        run: str = "",
        exits: EdgeExits | None = None,
        codec: CutCodec | None = None,
        energy: EnergyMeter | None = None,
    ):
        self.link = link or LinkSettings()
        self.codec = codec or CutCodec()
        """The cut codec each floating tensor leaving the edge is encoded with (after the head, on
        its device, so only the payload is moved off it)."""
        self.energy = energy
        """This host's power source: each record's ``edge_joules`` over the edge's own work."""
        self.hops = (hops,) if isinstance(hops, WorkerClient) else tuple(hops)
        self.client = self.hops[0] if self.hops else None
        self._replies = ReplyGroup(self.hops)
        self._reply_to = self.client.socket.getsockopt(zmq.ROUTING_ID).hex() if len(self.hops) > 1 else None
        emulated = self.link.emulated
        pace = Pace(None if math.isinf(emulated.rate) else emulated.rate, emulated.delay_ns) if emulated else None
        self.paces: tuple[Pace | None, ...] = (pace,) * (len(self.hops) + 1)
        """Under an emulated link, the pace into each worker in hop order, then the reply's; each
        sender holds what it sends for its own (``repace`` changes them between inferences)."""
        self.split = split
        self.spec = spec
        self.compression = compression or Compression()
        self.device = torch.device(device)
        self.timeout_s = timeout_s
        self.run = run
        self.exits = exits
        self._cloud_exits = None if exits is None else msgspec.structs.replace(exits.cloud, threshold=exits.threshold)
        """What the worker is asked to run of the exits, made once rather than per inference."""
        carried = exits.cloud.carried if exits is not None and exits.carry else ()
        self._carried_names = [crossing.name for attach in carried for crossing in split.live(attach)]
        """What the inputs of exits tried on the worker are sent as, after the cut's values."""
        self._heads: dict[int, tuple[Head, list[str]]] = {}
        self._prepared: set[tuple[int, ...]] = set()
        self._reply = CompressionSpec(
            codec=self.compression.codec, level=self.compression.level, shuffle=self.compression.shuffle
        )

    def prepare(self, cuts: int | Sequence[int]) -> None:
        """Build the head here and each worker's segment there, before anything is measured."""
        cuts = self._cuts(cuts)
        first = cuts[0] if cuts else self._output_cut
        if first not in self._heads:
            names = [crossing.name for crossing in self.split.live(first)]
            self._heads[first] = (self.split.head(first).to(self.device), names)
        for index, client in enumerate(self.hops[: len(cuts)]):
            end = cuts[index + 1] if index + 1 < len(cuts) else None
            next_hop = self.hops[index + 1].endpoint if end is not None else None
            ready = client.prepare(self.spec, cuts[index], end, next_hop)
            if ready.weights != self.split.weights_digest:
                raise ExperimentFailed(
                    f"edge and worker at {client.endpoint} hold different weights for {self.spec.name} "
                    f"(digest {self.split.weights_digest} here, {ready.weights} there): give both the same weights; "
                    "untrained models match only with the same torch version on both hosts"
                )
        self._prepared.add(cuts)
        if self.exits is not None and cuts:
            self.run_pipeline(cuts, torch.zeros(self.spec.input_shape), threshold=1.0)

    def infer(self, cut: int, inputs: torch.Tensor, repeat: int = 0, input_index: int = 0):
        """The model's output for ``inputs`` split at ``cut``, and the record of that inference."""
        output, record, _ = self.run_pipeline((cut,), inputs, repeat, input_index)
        return output, record

    def run_pipeline(
        self,
        cuts: Sequence[int],
        inputs: torch.Tensor,
        repeat: int = 0,
        input_index: int = 0,
        threshold: float | None = None,
    ):
        """The model's output for ``inputs`` cut at each of ``cuts`` (the edge runs to the first, the
        i-th worker from cut i to cut i+1, the last to the output), its record and one ``HopRecord``
        per worker. Without workers the edge runs the whole model and nothing crosses a link.
        ``threshold``: with exits, another than the run's (``prepare`` sends one sample no exit takes,
        so the worker builds its exits before anything is measured)."""
        cuts = self._cuts(cuts)
        if cuts not in self._prepared:
            self.prepare(cuts)
        if not cuts:
            return self._run_here(inputs, repeat, input_index)
        head, names = self._heads[cuts[0]]
        started_at_ns = time.time_ns()
        start = self._now()
        first = self._mark()
        if self.exits is None:
            with torch.inference_mode():
                live = head(inputs.to(self.device))
        elif self.exits.carry:
            ended, carried = self.exits.part.carry(inputs.to(self.device))
            live = (*(ended if isinstance(ended, tuple) else (ended,)), *carried)
            names = [*names, *self._carried_names]
        else:
            outcome = self.exits.part(self.exits.threshold if threshold is None else threshold, inputs.to(self.device))
            if outcome.exit is not None:
                done = self._now()
                record = self._local_record(cuts[0], start, done, done, started_at_ns, repeat, input_index)
                record = replace(record, edge_joules=self._joules(first, self._mark()))
                exit_fields = {"exit": outcome.exit, "exit_host": "edge", "confidence": outcome.confidence}
                return outcome.logits.cpu(), replace(record, **exit_fields, threshold=self.exits.threshold), []
            live = outcome.live if isinstance(outcome.live, tuple) else (outcome.live,)
        headed = self._now()
        if self.codec.enabled:
            live = [self.codec.encode(value, dtype_name(value, name)) for value, name in zip(live, names, strict=True)]
        live = [_on_cpu(value) for value in live]
        coded = self._now()
        specs, buffers, raw = pack(live, names, self.compression)
        ends = [*cuts[1:], None]
        route = tuple(
            Hop(endpoint=client.endpoint, end=end, pace=pace)
            for client, end, pace in zip(self.hops[1:], ends[1:], self.paces[1:-1], strict=True)
        )
        request = Infer(
            id=self.client.next_id(),
            model=self.spec,
            cut=cuts[0],
            values=specs,
            reply=self._reply,
            end=ends[0],
            route=route,
            reply_to=self._reply_to if route else None,
            reply_pace=self.paces[-1] if route else None,
            exits=self._cloud_exits
            if threshold is None or self._cloud_exits is None
            else msgspec.structs.replace(self._cloud_exits, threshold=threshold),
        )
        frames = encode(request, buffers)
        encoded = self._now()
        sent = self._mark()
        wire = sum(len(frame) for frame in frames)
        if self.link.emulated and self.paces[0] is not None:
            EmulatedLink(self.paces[0].rate or math.inf, self.paces[0].delay_ns).hold_outgoing(wire)
        exchange = self.client.exchange(frames, request.id, self.timeout_s, self._replies)
        reply = exchange.reply
        if self.link.emulated and not route:
            in_transit = exchange.received_ns - exchange.sent_ns - reply.timings.busy_ns
            self.link.emulated.hold_incoming(exchange.wire_bytes, in_transit)
        arrived = self._now()
        leaves = unpack(reply.values, exchange.buffers, request.id)
        output = leaves[0] if reply.exit else pytree.tree_unflatten(leaves, self.split.output_structure)
        done = self._now()
        figures = reply.hops or (HopFigures(reply.timings, raw, sum(len(buffer) for buffer in buffers)),)
        if len(figures) != len(cuts):
            raise ExperimentFailed(f"the pipeline's reply holds figures of {len(figures)} workers; it has {len(cuts)}")
        hops = [
            HopRecord(
                run=self.run,
                request=request.id,
                hop=number,
                endpoint=client.endpoint,
                start_cut=cut,
                end_cut=-1 if end is None else end,
                decode_ns=figure.timings.decode_ns,
                compute_ns=figure.timings.compute_ns,
                encode_ns=figure.timings.encode_ns,
                busy_ns=figure.timings.busy_ns,
                bytes_raw=figure.received_raw,
                bytes_wire=figure.received_wire,
            )
            for number, (client, cut, end, figure) in enumerate(zip(self.hops, cuts, ends, figures, strict=True), 1)
        ]
        worker_timings = [figure.timings for figure in figures]
        cut_facts = self.split.cut(cuts[0])
        record = InferenceRecord(
            run=self.run,
            model=self.split.name,
            granularity=str(self.split.granularity),
            cut=cuts[0],
            layer=cut_facts.after,
            repeat=repeat,
            input=input_index,
            request=request.id,
            edge_ns=headed - start,
            encode_ns=encoded - headed,
            transfer_ns=arrived - encoded - sum(timings.busy_ns for timings in worker_timings),
            cloud_decode_ns=sum(timings.decode_ns for timings in worker_timings),
            cloud_ns=sum(timings.compute_ns for timings in worker_timings),
            cloud_encode_ns=sum(timings.encode_ns for timings in worker_timings),
            decode_ns=done - arrived,
            e2e_ns=done - start,
            bytes_raw=raw,
            bytes_wire=wire,
            reply_bytes_raw=sum(spec.nbytes for spec in reply.values if spec.kind == "tensor"),
            reply_bytes_wire=exchange.wire_bytes,
            compression=str(self.compression),
            shaping=self.link.shaping,
            rate=self.link.rate,
            delay_ns=self.link.delay_ns,
            started_at_ns=started_at_ns,
            edge_peak_rss=peak_rss_bytes(),
            cloud_peak_rss=reply.peak_rss or None,
            codec=str(self.codec),
            codec_encode_ns=coded - headed if self.codec.enabled else 0,
            cloud_codec_ns=sum(timings.codec_ns for timings in worker_timings),
            edge_joules=self._joules(first, sent),
            cloud_joules=None
            if any(timings.joules is None for timings in worker_timings)
            else sum(timings.joules for timings in worker_timings),
        )
        if self.exits is not None:
            record = replace(
                record,
                exit=reply.exit,
                exit_host="cloud" if reply.exit else "",
                confidence=reply.confidence,
                threshold=self.exits.threshold,
            )
        return output, record, hops

    def repace(self, paces: Sequence[Pace | None]) -> None:
        """New paces for the emulated links of a pipeline (a link that changed mid-run)."""
        if len(paces) != len(self.hops) + 1:
            raise BadInput(f"{len(paces)} paces for {len(self.hops)} workers; expected one into each, then the reply's")
        self.paces = tuple(paces)

    def describe(self, cuts: int | Sequence[int]) -> tuple[int, str]:
        """Where an inference at ``cuts`` leaves the edge, and its pipeline label (none here)."""
        cuts = self._cuts(cuts)
        return (cuts[0] if cuts else self._output_cut), ""

    def _run_here(self, inputs: torch.Tensor, repeat: int, input_index: int):
        """The whole model on this host: a record with the edge's time alone and no bytes sent."""
        head, _ = self._heads[self._output_cut]
        started_at_ns = time.time_ns()
        start = self._now()
        first = self._mark()
        with torch.inference_mode():
            live = head(inputs.to(self.device))
        headed = self._now()
        last = self._mark()
        leaves = [value.cpu() if isinstance(value, torch.Tensor) else value for value in live]
        output = pytree.tree_unflatten(leaves, self.split.output_structure)
        done = self._now()
        record = self._local_record(self._output_cut, start, headed, done, started_at_ns, repeat, input_index)
        return output, replace(record, edge_joules=self._joules(first, last)), []

    def _local_record(
        self, cut: int, start: int, headed: int, done: int, started_at_ns: int, repeat: int, input_index: int
    ) -> InferenceRecord:
        """An inference that ended on this host (the whole model here, or an early exit before the
        cut): the edge's time alone, nothing sent, no request."""
        return InferenceRecord(
            run=self.run,
            model=self.split.name,
            granularity=str(self.split.granularity),
            cut=cut,
            layer=self.split.cut(cut).after,
            repeat=repeat,
            input=input_index,
            request=0,
            edge_ns=headed - start,
            encode_ns=0,
            transfer_ns=0,
            cloud_decode_ns=0,
            cloud_ns=0,
            cloud_encode_ns=0,
            decode_ns=done - headed,
            e2e_ns=done - start,
            bytes_raw=0,
            bytes_wire=0,
            reply_bytes_raw=0,
            reply_bytes_wire=0,
            compression=str(self.compression),
            shaping=self.link.shaping,
            rate=self.link.rate,
            delay_ns=self.link.delay_ns,
            started_at_ns=started_at_ns,
            edge_peak_rss=peak_rss_bytes(),
            codec=str(self.codec),
        )

    def _mark(self) -> Mark | None:
        return self.energy.mark() if self.energy is not None else None

    def _joules(self, start: Mark | None, end: Mark | None) -> float | None:
        return self.energy.joules(start, end) if self.energy is not None else None

    @property
    def _output_cut(self) -> int:
        """The cut after the model's last layer: a head up to it is the whole model."""
        return self.split.cuts[-1].index

    def _cuts(self, cuts: int | Sequence[int]) -> tuple[int, ...]:
        """``cuts`` as a tuple, checked against the pipeline: one cut per worker, in order."""
        cuts = (cuts,) if isinstance(cuts, int) else tuple(cuts)
        if len(cuts) != len(self.hops):
            raise BadInput(f"cuts {list(cuts)}: expected one cut per worker of this pipeline ({len(self.hops)})")
        if list(cuts) != sorted(set(cuts)):
            raise BadInput(f"cuts {list(cuts)}: expected increasing cut indices, each once")
        return cuts

    def await_worker(self, wait_s: float, after: Exception) -> None:
        """Return once every worker of the pipeline answers a ping again; raise when ``wait_s``
        passes without one from each."""
        deadline = time.monotonic() + wait_s
        for client in self.hops:
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    client.ping(min(2.0, remaining))
                    break
                except WorkerUnavailable:
                    time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            else:
                raise ExperimentFailed(
                    f"worker at {client.endpoint} did not answer again within {wait_s:g} s after: {after}; check "
                    "its host and worker.log, then continue with `harness sweep ... --resume RESULTS_DIR`"
                )

    def _now(self) -> int:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.monotonic_ns()


def sweep(
    driver: EdgeDriver,
    pairs: Iterable[tuple[int | tuple[int, ...], int]],
    inputs: Sequence[torch.Tensor],
    warmup: int = 1,
    retry: RetryPolicy | None = None,
    on_failure: Callable[[FailedInference], None] = lambda _: None,
) -> Iterator[tuple[InferenceRecord, object, list[HopRecord]]]:
    """Run a partitioner's ``(cut, repeat)`` pairs in order (a pipeline's cut is the tuple of its
    cuts); the first time a cut comes up, prepare it and run ``warmup`` unrecorded inferences.
    Repeat ``r`` uses ``inputs[r % len(inputs)]``. Each record is yielded, with the model's output
    and the hops' records, as soon as it is made. An inference the workers did not finish goes to
    ``on_failure`` and is tried again once the workers are back (``retry``). ``driver`` is an
    ``EdgeDriver``, or anything with its ``prepare``, ``run_pipeline``, ``describe``,
    ``await_worker``, ``run`` and ``split`` (a sweep's pipelines over tiers, one unit each)."""
    policy = retry or RetryPolicy()
    warmed: set[int] = set()
    for cut, repeat in pairs:
        index = repeat % len(inputs)
        for attempt in itertools.count(1):
            try:
                if cut not in warmed:
                    driver.prepare(cut)
                    for _ in range(warmup):
                        driver.run_pipeline(cut, inputs[0])
                    warmed.add(cut)
                output, record, hops = driver.run_pipeline(cut, inputs[index], repeat, index)
                break
            except WorkerUnavailable as error:
                first_cut, pipeline = driver.describe(cut)
                failed = FailedInference(
                    run=driver.run,
                    model=driver.split.name,
                    cut=first_cut,
                    pipeline=pipeline,
                    repeat=repeat,
                    input=index,
                    attempt=attempt,
                    error=str(error),
                    at_ns=time.time_ns(),
                )
                on_failure(failed)
                if attempt > policy.attempts:
                    raise ExperimentFailed(
                        f"cut {cut}, repeat {repeat} failed {attempt} times (retry.attempts is {policy.attempts}); "
                        f"last: {error}"
                    ) from None
                driver.await_worker(policy.wait_s, error)
                warmed.clear()
        yield record, output, hops


def synthetic_inputs(shape: Sequence[int], count: int, seed: int = 0) -> list[torch.Tensor]:
    """``count`` normal random inputs, the same for the same seed on every host."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(tuple(shape), generator=generator) for _ in range(count)]


def _on_cpu(value):
    """A tensor, or a codec's payload, moved off the edge's device for the wire."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, Coded):
        return replace(value, payload=value.payload.cpu())
    return value
