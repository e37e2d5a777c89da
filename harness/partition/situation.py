"""What a partitioner decides from: the model's cuts and layers, each layer's latency on both hosts,
the link, and (when a sweep measured them) the measured latency per cut.

Per-layer latencies come from the profiles a sweep records in ``layers.parquet`` (the whole model
timed on the edge and on the worker), from such a file saved earlier, or from profiling both roles
on this machine. The cost of a cut is the seed's: the edge's layers up to it, the live tensors sent
once each at the link's rate, the cloud's layers after it; the reply carrying the output and the
link's delay both ways are added to every cut alike, so predictions compare with measured totals.

Under a cut codec a cut is charged the codec's payload, not the tensors' own bytes, and the codec's
time on both hosts (``codec_ns``: encoding on the edge plus decoding on the worker, per cut).
"""

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from harness.errors import BadInput
from harness.manifest.matrix import Run
from harness.model import SplitGraph
from harness.model.profile import profile
from harness.wire.codecs import CutCodec


@dataclass(frozen=True)
class LayerCost:
    """One layer of the split graph: its type, parameter bytes (the seed's m_j) and latency per host."""

    index: int
    name: str
    op: str
    param_bytes: int
    edge_ns: float
    cloud_ns: float


@dataclass(frozen=True)
class Link:
    """Payload bytes per second and one-way delay in seconds, as the manifest's link gives them."""

    rate: float
    delay_s: float = 0.0


@dataclass
class Situation:
    split: SplitGraph
    layers: list[LayerCost]
    link: Link
    cuts: list[int]
    measured_ms: dict[int, float] = field(default_factory=dict)
    codec: CutCodec = field(default_factory=CutCodec)
    codec_ns: dict[int, float] = field(default_factory=dict)

    @cached_property
    def output_bytes(self) -> int:
        return self.split.cuts[-1].bytes if self.split.cuts[-1].index == len(self.split.layers) else 0

    @cached_property
    def cut_bytes(self) -> dict[int, int]:
        """Bytes sent at each cut, each tensor counted once: its own, or its codec's payload."""
        if not self.codec.enabled:
            return {cut.index: cut.bytes for cut in self.split.cuts}
        return {
            cut.index: sum(
                self.codec.payload_size(leaf.dtype, leaf.shape, leaf.nbytes)
                for leaf in cut.live
                if leaf.kind == "tensor"
            )
            for cut in self.split.cuts
        }

    def transfer_ms(self, cut: int) -> float:
        """Request and reply at the link's rate, plus its delay each way."""
        nbytes = self.cut_bytes[cut] + self.output_bytes
        return 1e3 * (nbytes / self.link.rate + 2 * self.link.delay_s)

    def offload_ms(self, cut: int) -> float:
        """What sending at ``cut`` costs beyond the layers: the transfer and the codec on both hosts."""
        return self.transfer_ms(cut) + self.codec_ns.get(cut, 0.0) / 1e6

    def totals_ms(self, edge_ns: np.ndarray, cloud_ns: np.ndarray) -> dict[int, float]:
        """Predicted end-to-end latency of every allowed cut from per-layer estimates on each host."""
        edge_prefix = np.concatenate(([0.0], np.cumsum(edge_ns)))
        cloud_suffix = np.concatenate((np.cumsum(cloud_ns[::-1])[::-1], [0.0]))
        return {cut: (edge_prefix[cut] + cloud_suffix[cut]) / 1e6 + self.offload_ms(cut) for cut in self.cuts}

    @cached_property
    def profiled_ms(self) -> dict[int, float]:
        """Every allowed cut priced with the profiled latencies themselves."""
        return self.totals_ms(self.edge_ns, self.cloud_ns)

    @cached_property
    def edge_ns(self) -> np.ndarray:
        return np.array([layer.edge_ns for layer in self.layers], dtype=float)

    @cached_property
    def cloud_ns(self) -> np.ndarray:
        return np.array([layer.cloud_ns for layer in self.layers], dtype=float)


def layer_param_bytes(split: SplitGraph) -> list[int]:
    """Bytes of the parameters and buffers each layer reads (precision x elements, summed)."""
    return [split.facts.bytes_of(params) for params in split.layer_params]


def situation_from_profiles(
    split: SplitGraph,
    edge_ns: list[float],
    cloud_ns: list[float],
    link: Link,
    cuts: list[int] | None = None,
    measured_ms: dict[int, float] | None = None,
    codec: CutCodec | None = None,
    codec_ns: dict[int, float] | None = None,
) -> Situation:
    if not (len(edge_ns) == len(cloud_ns) == len(split.layers)):
        raise BadInput(
            f"profiles of model '{split.name}' have {len(edge_ns)} edge and {len(cloud_ns)} cloud layers; "
            f"expected {len(split.layers)} at {split.granularity} granularity"
        )
    if link.rate <= 0:
        raise BadInput(f"link rate {link.rate} B/s: expected a positive rate")
    allowed = [cut.index for cut in split.cuts] if cuts is None else [split.cut(cut).index for cut in cuts]
    layers = [
        LayerCost(position, layer.name, layer.op, size, float(edge), float(cloud))
        for position, (layer, size, edge, cloud) in enumerate(
            zip(split.layers, layer_param_bytes(split), edge_ns, cloud_ns, strict=True), start=1
        )
    ]
    return Situation(split, layers, link, allowed, dict(measured_ms or {}), codec or CutCodec(), dict(codec_ns or {}))


def run_situation(
    run: Run,
    split: SplitGraph,
    edge_ns: list[float],
    cloud_ns: list[float],
    measured_ms: dict[int, float],
    codec_ns: dict[int, float] | None = None,
) -> Situation:
    """A manifest run as partitioners see it: its allowed cuts, its link and its cut codec (whose
    time per cut is ``codec_ns``, measured or estimated), with these profiles."""
    cuts = [cut.index for cut in split.cuts] if run.cuts == "all" else [split.cut(cut).index for cut in run.cuts]
    link = Link(run.link.rate_bytes, run.link.delay_ns / 1e9)
    codec = CutCodec.parse(run.codec)
    return situation_from_profiles(split, edge_ns, cloud_ns, link, cuts, measured_ms, codec, codec_ns)


def measured_totals(summary: pd.DataFrame, run: str) -> dict[int, float]:
    """Median end-to-end milliseconds per cut of ``run``, from a sweep's summary."""
    rows = summary[summary["run"] == run]
    return {int(cut): float(ms) for cut, ms in zip(rows["cut"], rows["total_ms_median"], strict=True)}


def profiles_from_layers(layers: pd.DataFrame, run: str, split: SplitGraph, source: str) -> tuple[list, list]:
    """Edge and cloud median latencies per layer of ``run`` from a ``layers.parquet`` table, in
    layer order; names must match the split graph's, or the profile belongs to another model."""
    found = []
    for role in ("edge", "cloud"):
        rows = layers[(layers["run"] == run) & (layers["role"] == role)]
        names = list(rows["layer"])
        expected = [layer.name for layer in split.layers]
        if names != expected:
            raise BadInput(
                f"{source}: the {role} profile of run '{run}' has {len(names)} layers "
                f"({', '.join(names[:3]) or 'none'}...); expected {len(expected)} of model '{split.name}' at "
                f"{split.granularity} granularity ({', '.join(expected[:3])}...)"
            )
        found.append([float(value) for value in rows["median_ns"]])
    return found[0], found[1]


def profile_here(split: SplitGraph, repeats: int = 10, warmup: int = 3) -> list[float]:
    """Median latency per layer of the whole model on this machine."""
    return [layer.median_ms * 1e6 for layer in profile(split, None, repeats, warmup).layers]
