"""Seed 003's figure in simulation: placement strategies by host count on addnn's IoT/edge/cloud
scenario, with GoogLeNet's chain from our own split engine (its single-tensor cuts at block
granularity), seeds 0..4. Each strategy's solve time, peak memory, predicted latency and ratio to
the optimum (``dp``, exact) are measured in turn; ``ilp`` runs under a time limit and only up to
``ilp_max_hosts``, and ``exhaustive`` not at all (it is for instances of a few hosts).
"""

import statistics
import tracemalloc
from dataclasses import dataclass

import numpy as np

from harness.errors import BadInput
from harness.model import Granularity, build_split_graph, load_model
from harness.partition.placement import place, strategy_names
from harness.partition.placement.scenario import Chain, iot_edge_cloud
from harness.partition.situation import layer_param_bytes

HOST_COUNTS = (3, 6, 9, 15, 30, 60, 100, 300, 1000)
STRATEGIES = ("dp", "ilp", "genetic", "cloud-only", "device-only", "even-split")
DP_TARGET_S = 2.0
DP_TARGET_BYTES = 1 << 30


@dataclass(frozen=True)
class PlacementRow:
    hosts: int
    strategy: str
    seeds: int
    solve_s: float
    peak_bytes: int
    latency_s: float | None
    ratio: float | None
    statuses: str
    generations: float | None

    @property
    def within_target(self) -> bool | None:
        if self.strategy != "dp":
            return None
        return self.solve_s <= DP_TARGET_S and self.peak_bytes <= DP_TARGET_BYTES


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 3:
        raise BadInput(f"--hosts '{text}': expected comma-separated host counts of at least 3 (one host per tier)")
    return counts


def parse_strategies(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in strategy_names() and ":" not in name]
    if not names or unknown:
        raise BadInput(f"--strategies '{text}': expected names from {', '.join(strategy_names())}")
    return names


def model_chain(name: str = "googlenet", granularity: Granularity = Granularity.BLOCK) -> Chain:
    """A model's segments between consecutive cuts of its split graph, with FLOPs, parameter bytes
    and the bytes live at each cut."""
    split = build_split_graph(load_model(name), granularity)
    flops = {cut.index: cut.flops for cut in split.cuts}
    layers = len(split.layers)
    return Chain(
        name,
        np.array([float(flops.get(position, 0)) for position in range(1, layers + 1)]),
        np.array(layer_param_bytes(split), dtype=float),
        np.array([float(split.cut(position).bytes) for position in range(layers + 1)]),
    )


def bench_placement(
    chain: Chain,
    host_counts=HOST_COUNTS,
    seeds=range(5),
    strategies=STRATEGIES,
    ilp_time_limit_s: float = 60.0,
    ilp_max_hosts: int = 60,
    progress=None,
) -> list[PlacementRow]:
    """One row per host count and strategy; ``dp`` is solved first (it is put first if listed
    later) and its placements are the optimum every other ratio is taken against."""
    ordered = ["dp", *(strategy for strategy in strategies if strategy != "dp")]
    rows = []
    for hosts in host_counts:
        problems = [iot_edge_cloud(chain, hosts, seed) for seed in seeds]
        optimum: list[float] = []
        for strategy in ordered:
            if strategy == "ilp" and hosts > ilp_max_hosts:
                continue
            if progress is not None:
                progress(f"{hosts} hosts: {strategy}")
            options = {"time_limit_s": ilp_time_limit_s} if strategy == "ilp" else {}
            results, peaks = [], []
            for seed, problem in zip(seeds, problems, strict=True):
                tracemalloc.start()
                extra = {"seed": seed} if strategy == "genetic" else {}
                results.append(place(strategy, problem, **options, **extra))
                peaks.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
            if strategy == "dp":
                optimum = [result.value_s for result in results]
            feasible = [(result, best) for result, best in zip(results, optimum, strict=True) if result.feasible]
            generations = [dict(result.details).get("generations") for result in results]
            rows.append(
                PlacementRow(
                    hosts,
                    strategy,
                    len(results),
                    statistics.median(result.solve_s for result in results),
                    max(peaks),
                    statistics.mean(result.value_s for result, _ in feasible) if feasible else None,
                    max(result.value_s / best for result, best in feasible) if feasible else None,
                    ",".join(sorted({result.status for result in results})),
                    max(generations) if strategy == "genetic" else None,
                )
            )
    return rows
