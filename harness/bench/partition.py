"""How long each partitioner takes to decide, once the profiles are in (targets on googlenet:
neurosurgeon under 5 ms, dads under 50 ms), and each upload planner (seed 004: recursive efficiency
under 0.6 ms on alexnet and 2 ms on mobilenet_v2, googlenet and resnet50; ionn under 0.5 ms).

Cut partitioners see every model at node granularity, the finest and so the slowest to decide.
Upload planners see the units between single-tensor cuts at module granularity (how a manifest's
``upload`` cuts a model by default) over 80 Mbps. The profiles are made up from each layer's FLOPs
(the edge ten times slower than the cloud): decision time depends on the graph's size and shape, not
on the latencies, and no host is needed. The oracle decides from measured latencies, which the
benchmark also makes up from the same profile.
"""

import statistics
from dataclasses import dataclass

from harness.model import Granularity, build_split_graph, load_model
from harness.partition import decide
from harness.partition.situation import Link, situation_from_profiles
from harness.partition.upload import plan_upload
from harness.partition.upload.units import upload_chain

TARGETS_MS = {
    ("googlenet", "neurosurgeon"): 5.0,
    ("googlenet", "dads"): 50.0,
    ("alexnet", "upload ionn"): 0.5,
    ("alexnet", "upload recursive-efficiency"): 0.6,
    ("mobilenet_v2", "upload recursive-efficiency"): 2.0,
    ("googlenet", "upload recursive-efficiency"): 2.0,
    ("resnet50", "upload recursive-efficiency"): 2.0,
}
PARTITIONERS = ("neurosurgeon", "dads", "oracle")
UPLOAD_PLANNERS = ("ionn", "efficiency", "recursive-efficiency")
UPLOAD_RATE = 80 * 2**20 / 8
"""80 Mbps as IONN's code counts it, in bytes per second."""


@dataclass(frozen=True)
class DecisionCost:
    model: str
    partitioner: str
    layers: int
    cuts: int
    median_ms: float
    p95_ms: float
    target_ms: float | None

    @property
    def within_target(self) -> bool:
        return self.target_ms is None or self.median_ms <= self.target_ms


def bench_model(name: str, repeats: int, rate: float = 4e6) -> list[DecisionCost]:
    split = build_split_graph(load_model(name), Granularity.NODE)
    edge, cloud = _made_up_profiles(split)
    situation = situation_from_profiles(split, edge, cloud, Link(rate))
    situation.measured_ms.update(situation.profiled_ms)
    rows = []
    for partitioner in PARTITIONERS:
        decide(partitioner, situation)
        times = [decide(partitioner, situation).decision_ns / 1e6 for _ in range(repeats)]
        rows.append(_cost(name, partitioner, len(split.layers), len(situation.cuts), times))
    return rows


def bench_upload(name: str, repeats: int) -> list[DecisionCost]:
    """Upload planners on ``name``'s units; ``cuts`` in the table is the number of units."""
    split = build_split_graph(load_model(name), Granularity.MODULE)
    chain = upload_chain(split, *_made_up_profiles(split), UPLOAD_RATE)
    rows = []
    for planner in UPLOAD_PLANNERS:
        plan_upload(planner, chain)
        times = [plan_upload(planner, chain).decision_ns / 1e6 for _ in range(repeats)]
        rows.append(_cost(name, f"upload {planner}", len(split.layers), len(chain), times))
    return rows


def _made_up_profiles(split) -> tuple[list[float], list[float]]:
    """Nanoseconds per layer from its FLOPs on the edge, ten times fewer on the cloud."""
    layer_flops = {cut.index: cut.flops for cut in split.cuts}
    edge = [1e3 + 0.5 * layer_flops.get(position, 0) for position in range(1, len(split.layers) + 1)]
    return edge, [value / 10 for value in edge]


def _cost(model: str, partitioner: str, layers: int, cuts: int, times: list[float]) -> DecisionCost:
    return DecisionCost(
        model,
        partitioner,
        layers,
        cuts,
        statistics.median(times),
        statistics.quantiles(times, n=20)[18] if len(times) > 1 else times[0],
        TARGETS_MS.get((model, partitioner)),
    )
