"""How long each partitioner takes to decide, once the profiles are in (targets on googlenet:
neurosurgeon under 5 ms, dads under 50 ms).

Every model is split at node granularity, the finest and so the slowest to decide. The profiles
are made up from each layer's FLOPs (the edge ten times slower than the cloud): decision time
depends on the graph's size and shape, not on the latencies, and no host is needed. The oracle
decides from measured latencies, which the benchmark also makes up from the same profile.
"""

import statistics
from dataclasses import dataclass

from harness.model import Granularity, build_split_graph, load_model
from harness.partition import decide
from harness.partition.situation import Link, situation_from_profiles

TARGETS_MS = {("googlenet", "neurosurgeon"): 5.0, ("googlenet", "dads"): 50.0}
PARTITIONERS = ("neurosurgeon", "dads", "oracle")


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
    layer_flops = {}
    for cut in split.cuts:
        layer_flops[cut.index] = cut.flops
    edge = [1e3 + 0.5 * layer_flops.get(position, 0) for position in range(1, len(split.layers) + 1)]
    cloud = [value / 10 for value in edge]
    situation = situation_from_profiles(split, edge, cloud, Link(rate))
    situation.measured_ms.update(situation.profiled_ms)
    rows = []
    for partitioner in PARTITIONERS:
        decide(partitioner, situation)
        times = [decide(partitioner, situation).decision_ns / 1e6 for _ in range(repeats)]
        rows.append(
            DecisionCost(
                name,
                partitioner,
                len(split.layers),
                len(situation.cuts),
                statistics.median(times),
                statistics.quantiles(times, n=20)[18] if len(times) > 1 else times[0],
                TARGETS_MS.get((name, partitioner)),
            )
        )
    return rows
