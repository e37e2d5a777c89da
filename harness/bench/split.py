"""What splitting costs in one process: head then tail against the unsplit forward.

The split segments must add almost nothing to what they measure (target: at most 3% at the median).
Each split run is paired with an unsplit run beside it (which of the two goes first alternates, and
the cuts come in a fresh random order each round); the overhead is the median of the paired ratios.
On a shared two-core machine independent medians drifted by up to 5% either way between variants
that do the same work, more than the 3% being checked; pairing cancels that drift. The unsplit
forward is the user's own module, not our traced graph.

glibc returns large freed blocks to the kernel and maps them afresh, so each forward pays page
faults for its activations, and how many depends on what the process did before: the same
mobilenet_v2 forward measured 34 ms or 24 ms in one process. ``steady_allocator`` keeps freed
memory in the heap for the benchmark's duration, which makes figures repeatable and closer to a
long-running worker's.
"""

import ctypes
import ctypes.util
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from harness.model import Granularity, build_split_graph, load_model

TARGET_OVERHEAD = 0.03


@dataclass(frozen=True)
class SplitCost:
    """Medians of the unsplit and split runs at one cut, and the median of their paired ratios."""

    model: str
    cut: int
    after: str
    unsplit_ms: float
    split_ms: float
    overhead: float

    @property
    def within_target(self) -> bool:
        return self.overhead <= TARGET_OVERHEAD


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_IN_HEAP = 1 << 30


def steady_allocator() -> bool:
    """Ask glibc to keep freed blocks up to 1 GiB in the heap; False where libc is not glibc."""
    path = ctypes.util.find_library("c")
    if path is None:
        return False
    libc = ctypes.CDLL(path)
    if not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _KEEP_IN_HEAP)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_IN_HEAP))


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
    """Paired timings of the unsplit model and of head+tail at the sampled cuts."""
    loaded = load_model(name)
    split = build_split_graph(loaded, Granularity.MODULE)
    cuts = [split.cut(index) for index in _sample_cuts([cut.index for cut in split.cuts], cut_count)]
    example = torch.randn(split.input_shape)
    unsplit = lambda: loaded.module(example)  # noqa: E731
    runners = {}
    for cut in cuts:
        head, tail = split.head(cut.index), split.tail(cut.index)
        runners[cut.index] = lambda head=head, tail=tail: tail(*head(example))
    pairs: dict[int, list[tuple[float, float]]] = {index: [] for index in runners}
    order = list(runners)
    shuffler = random.Random(0)
    with torch.no_grad():
        for round_number in range(warmup + repeats):
            shuffler.shuffle(order)
            for index in order:
                if round_number % 2:
                    split_ms, unsplit_ms = _elapsed_ms(runners[index]), _elapsed_ms(unsplit)
                else:
                    unsplit_ms, split_ms = _elapsed_ms(unsplit), _elapsed_ms(runners[index])
                if round_number >= warmup:
                    pairs[index].append((unsplit_ms, split_ms))
    return [
        SplitCost(
            model=name,
            cut=cut.index,
            after=cut.after,
            unsplit_ms=statistics.median(u for u, _ in pairs[cut.index]),
            split_ms=statistics.median(s for _, s in pairs[cut.index]),
            overhead=statistics.median(s / u for u, s in pairs[cut.index]) - 1.0,
        )
        for cut in cuts
    ]
