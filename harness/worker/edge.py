"""The edge driver: run the head, send what crosses the cut, wait for the tail's output, record it.

One record per inference, emitted as soon as the inference ends. The edge's own clock times its
head, its encoding and its decoding; the worker's reply carries the worker's times; the transfer
time is what remains of the end-to-end time, so a shaped (or emulated) link shows up there alone.

An inference the worker could not finish (it died, restarted or went quiet) is reported as a
``FailedInference`` and tried again, per ``RetryPolicy``, once the worker answers pings again; the
restarted worker's tails are prepared and warmed up anew, so no record pays for a restart.
"""

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import torch
from torch.utils import _pytree as pytree

from harness.errors import ExperimentFailed
from harness.model import Head, SplitGraph
from harness.results import FailedInference, InferenceRecord
from harness.wire.compression import Compression
from harness.wire.frames import CompressionSpec, Infer, ModelSpec, encode
from harness.wire.link import EmulatedLink
from harness.wire.tensors import pack, unpack
from harness.worker.client import WorkerClient, WorkerUnavailable


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


class EdgeDriver:
    """Runs heads of ``split`` here and their tails on the worker behind ``client``."""

    def __init__(
        self,
        client: WorkerClient,
        split: SplitGraph,
        spec: ModelSpec,
        compression: Compression | None = None,
        link: LinkSettings | None = None,
        device: str = "cpu",
        timeout_s: float = 60.0,
        run: str = "",
    ):
        self.client = client
        self.split = split
        self.spec = spec
        self.compression = compression or Compression()
        self.link = link or LinkSettings()
        self.device = torch.device(device)
        self.timeout_s = timeout_s
        self.run = run
        self._heads: dict[int, tuple[Head, list[str]]] = {}
        self._reply = CompressionSpec(
            codec=self.compression.codec, level=self.compression.level, shuffle=self.compression.shuffle
        )

    def prepare(self, cut: int) -> None:
        """Build the head here and the tail on the worker, before anything is measured."""
        if cut not in self._heads:
            names = [crossing.name for crossing in self.split.live(cut)]
            self._heads[cut] = (self.split.head(cut).to(self.device), names)
        ready = self.client.prepare(self.spec, cut)
        if ready.weights != self.split.weights_digest:
            raise ExperimentFailed(
                f"edge and worker at {self.client.endpoint} hold different weights for {self.spec.name} "
                f"(digest {self.split.weights_digest} here, {ready.weights} there): give both the same weights; "
                "untrained models match only with the same torch version on both hosts"
            )

    def infer(self, cut: int, inputs: torch.Tensor, repeat: int = 0, input_index: int = 0):
        """The model's output for ``inputs`` split at ``cut``, and the record of that inference."""
        if cut not in self._heads:
            self.prepare(cut)
        head, names = self._heads[cut]
        started_at_ns = time.time_ns()
        start = self._now()
        with torch.inference_mode():
            live = head(inputs.to(self.device))
        headed = self._now()
        live = [value.cpu() if isinstance(value, torch.Tensor) else value for value in live]
        specs, buffers, raw = pack(live, names, self.compression)
        request = Infer(id=self.client.next_id(), model=self.spec, cut=cut, values=specs, reply=self._reply)
        frames = encode(request, buffers)
        encoded = self._now()
        wire = sum(len(frame) for frame in frames)
        if self.link.emulated:
            self.link.emulated.hold_outgoing(wire)
        exchange = self.client.exchange(frames, request.id, self.timeout_s)
        timings = exchange.reply.timings
        if self.link.emulated:
            in_transit = exchange.received_ns - exchange.sent_ns - timings.busy_ns
            self.link.emulated.hold_incoming(exchange.wire_bytes, in_transit)
        arrived = self._now()
        leaves = unpack(exchange.reply.values, exchange.buffers, request.id)
        output = pytree.tree_unflatten(leaves, self.split.output_structure)
        done = self._now()
        cut_facts = self.split.cut(cut)
        record = InferenceRecord(
            run=self.run,
            model=self.split.name,
            granularity=str(self.split.granularity),
            cut=cut,
            layer=cut_facts.after,
            repeat=repeat,
            input=input_index,
            request=request.id,
            edge_ns=headed - start,
            encode_ns=encoded - headed,
            transfer_ns=arrived - encoded - timings.busy_ns,
            cloud_decode_ns=timings.decode_ns,
            cloud_ns=timings.compute_ns,
            cloud_encode_ns=timings.encode_ns,
            decode_ns=done - arrived,
            e2e_ns=done - start,
            bytes_raw=raw,
            bytes_wire=wire,
            reply_bytes_raw=sum(spec.nbytes for spec in exchange.reply.values if spec.kind == "tensor"),
            reply_bytes_wire=exchange.wire_bytes,
            compression=str(self.compression),
            shaping=self.link.shaping,
            rate=self.link.rate,
            delay_ns=self.link.delay_ns,
            started_at_ns=started_at_ns,
        )
        return output, record

    def await_worker(self, wait_s: float, after: Exception) -> None:
        """Return once the worker answers a ping again; raise when ``wait_s`` passes without one."""
        deadline = time.monotonic() + wait_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                self.client.ping(min(2.0, remaining))
                return
            except WorkerUnavailable:
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        raise ExperimentFailed(
            f"worker at {self.client.endpoint} did not answer again within {wait_s:g} s after: {after}; "
            "check the cloud host and its worker.log, then continue with `harness sweep ... --resume RESULTS_DIR`"
        )

    def _now(self) -> int:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.monotonic_ns()


def sweep(
    driver: EdgeDriver,
    pairs: Iterable[tuple[int, int]],
    inputs: Sequence[torch.Tensor],
    warmup: int = 1,
    retry: RetryPolicy | None = None,
    on_failure: Callable[[FailedInference], None] = lambda _: None,
) -> Iterator[tuple[InferenceRecord, object]]:
    """Run a partitioner's ``(cut, repeat)`` pairs in order; the first time a cut comes up, prepare it
    and run ``warmup`` unrecorded inferences. Repeat ``r`` uses ``inputs[r % len(inputs)]``. Each
    record is yielded, with the model's output, as soon as it is made. An inference the worker did
    not finish goes to ``on_failure`` and is tried again after the worker is back (``retry``)."""
    policy = retry or RetryPolicy()
    warmed: set[int] = set()
    for cut, repeat in pairs:
        index = repeat % len(inputs)
        for attempt in itertools.count(1):
            try:
                if cut not in warmed:
                    driver.prepare(cut)
                    for _ in range(warmup):
                        driver.infer(cut, inputs[0])
                    warmed.add(cut)
                output, record = driver.infer(cut, inputs[index], repeat, index)
                break
            except WorkerUnavailable as error:
                failed = FailedInference(
                    run=driver.run,
                    model=driver.split.name,
                    cut=cut,
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
        yield record, output


def synthetic_inputs(shape: Sequence[int], count: int, seed: int = 0) -> list[torch.Tensor]:
    """``count`` normal random inputs, the same for the same seed on every host."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(tuple(shape), generator=generator) for _ in range(count)]
