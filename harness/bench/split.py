"""What splitting costs in one process: head then tail against the unsplit forward.

The split segments must add almost nothing to what they measure (target: at most 3% at the median).
Runs are interleaved, unsplit then each cut in turn, so drift in the machine's speed hits every
column alike; the unsplit forward is the user's own module, not our traced graph.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from harness.model import Granularity, build_split_graph, load_model

DEFAULT_MODELS = ("alexnet", "resnet18", "mobilenet_v2")
TARGET_OVERHEAD = 0.03


@dataclass(frozen=True)
class SplitCost:
    model: str
    cut: int
    after: str
    unsplit_ms: float
    split_ms: float

    @property
    def overhead(self) -> float:
        return self.split_ms / self.unsplit_ms - 1.0

    @property
    def within_target(self) -> bool:
        return self.overhead <= TARGET_OVERHEAD


def _sample_cuts(indices: list[int], count: int | None) -> list[int]:
    """``count`` cuts spread evenly from first to last (all of them when ``count`` is None)."""
    if count is None or count >= len(indices):
        return indices
    step = (len(indices) - 1) / (count - 1)
    return sorted({indices[round(i * step)] for i in range(count)})


def _elapsed_ms(run: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    run()
    return (time.perf_counter_ns() - start) / 1e6


def bench_model(name: str, repeats: int, cut_count: int | None, warmup: int = 3) -> list[SplitCost]:
    """Median latency of the unsplit model and of head+tail at the sampled cuts."""
    loaded = load_model(name)
    split = build_split_graph(loaded, Granularity.MODULE)
    cuts = [split.cut(index) for index in _sample_cuts([cut.index for cut in split.cuts], cut_count)]
    segments = {cut.index: (split.head(cut.index), split.tail(cut.index)) for cut in cuts}
    example = torch.randn(split.input_shape)
    runners = {"unsplit": lambda: loaded.module(example)}
    for index, (head, tail) in segments.items():
        runners[index] = lambda head=head, tail=tail: tail(*head(example))
    samples: dict[object, list[float]] = {key: [] for key in runners}
    with torch.no_grad():
        for round_number in range(warmup + repeats):
            for key, run in runners.items():
                elapsed = _elapsed_ms(run)
                if round_number >= warmup:
                    samples[key].append(elapsed)
    unsplit = statistics.median(samples["unsplit"])
    return [SplitCost(name, cut.index, cut.after, unsplit, statistics.median(samples[cut.index])) for cut in cuts]
