"""The edge driver: run the head, send what crosses the cut, wait for the tail's output, record it.

One record per inference, emitted as soon as the inference ends. The edge's own clock times its
head, its encoding and its decoding; the worker's reply carries the worker's times; the transfer
time is what remains of the end-to-end time, so a shaped (or emulated) link shows up there alone.
"""

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils import _pytree as pytree

from harness.errors import ExperimentFailed
from harness.model import Head, SplitGraph
from harness.results import InferenceRecord
from harness.wire.compression import Compression
from harness.wire.frames import CompressionSpec, Infer, ModelSpec, encode
from harness.wire.link import EmulatedLink
from harness.wire.tensors import pack, unpack
from harness.worker.client import WorkerClient


@dataclass(frozen=True)
class LinkSettings:
    """How the link between edge and cloud is treated: ``shaping`` is recorded with every inference."""

    shaping: str = "none"
    emulated: EmulatedLink | None = None

    @property
    def rate(self) -> float:
        return self.emulated.rate if self.emulated else 0.0

    @property
    def delay_ns(self) -> int:
        return self.emulated.delay_ns if self.emulated else 0


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

    def _now(self) -> int:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.monotonic_ns()


def sweep(
    driver: EdgeDriver, pairs: Iterable[tuple[int, int]], inputs: Sequence[torch.Tensor], warmup: int = 1
) -> Iterator[tuple[InferenceRecord, object]]:
    """Run a partitioner's ``(cut, repeat)`` pairs in order; the first time a cut comes up, prepare it
    and run ``warmup`` unrecorded inferences. Repeat ``r`` uses ``inputs[r % len(inputs)]``. Each
    record is yielded, with the model's output, as soon as it is made."""
    warmed: set[int] = set()
    for cut, repeat in pairs:
        if cut not in warmed:
            driver.prepare(cut)
            for _ in range(warmup):
                driver.infer(cut, inputs[0])
            warmed.add(cut)
        index = repeat % len(inputs)
        output, record = driver.infer(cut, inputs[index], repeat, index)
        yield record, output


def synthetic_inputs(shape: Sequence[int], count: int, seed: int = 0) -> list[torch.Tensor]:
    """``count`` normal random inputs, the same for the same seed on every host."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(tuple(shape), generator=generator) for _ in range(count)]
