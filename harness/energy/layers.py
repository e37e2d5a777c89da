"""Joules per layer: each stretch of the model between two cuts run again and again, alone, until
the energy it takes rises well above what the sensor can tell.

A power sensor cannot see one layer's run: RAPL's counters move about once a millisecond, NVML's
every 20 to 100 ms, and a meter is sampled a few hundred times a second. So each segment between
consecutive cuts (one layer where every layer boundary is a cut) is repeated until its window is
``min_window_s`` long and ``RESOLUTIONS_PER_WINDOW`` times the sensor's resolution, and it ran at
least ``min_runs`` times; its joules per run are the window's over the runs. Where a segment
holds several layers (a boundary where no cut is allowed), its joules are shared among them by
their profiled latency. The energy is the host's (RAPL counts the package, idle power included):
profile on a quiet host.
"""

import itertools
import time
from dataclasses import dataclass

import torch

from harness.energy.meter import EnergyMeter
from harness.model.graph import SplitGraph
from harness.model.profile import ProfileReport

RESOLUTIONS_PER_WINDOW = 10
"""A window's ends are each off by at most about one resolution's energy (a step's, where the sensor
steps): over ten of them, a tenth at worst, and far less where the power is steady."""


@dataclass(frozen=True)
class LayerEnergy:
    index: int
    name: str
    op: str
    joules: float
    """Per run of the layer."""
    runs: int
    """How often its segment ran to measure it."""


def energy_per_layer(
    split: SplitGraph,
    meter: EnergyMeter,
    timings: ProfileReport,
    min_window_s: float = 0.2,
    min_runs: int = 3,
    device: torch.device | None = None,
) -> list[LayerEnergy]:
    device = device or torch.device("cpu")
    latency = {layer.index: layer.median_ms for layer in timings.layers}
    example = torch.randn(split.input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    window_s = max(min_window_s, RESOLUTIONS_PER_WINDOW * meter.resolution_s)
    boundaries = [cut.index for cut in split.cuts]
    last = len(split.layers)
    found = []
    for start, end in itertools.pairwise(boundaries):
        segment = split.segment(start, end if end < last else None).to(device)
        inputs = _live(split, start, example, device)
        joules, runs = _measure(segment, inputs, meter, window_s, min_runs, device)
        positions = range(start + 1, end + 1)
        total_ms = sum(latency.get(position, 0.0) for position in positions)
        for position in positions:
            share = latency.get(position, 0.0) / total_ms if total_ms else 1 / len(positions)
            layer = split.layers[position - 1]
            found.append(LayerEnergy(position, layer.name, layer.op, joules * share, runs))
    return found


def _live(split: SplitGraph, cut: int, example: torch.Tensor, device: torch.device) -> tuple:
    """The values live at ``cut`` for ``example``, flat, as a segment from there takes them."""
    if cut == 0:
        return (example,)
    head = split.head(cut).to(device)
    with torch.no_grad():
        return tuple(head(example.clone()))


def _measure(segment, inputs: tuple, meter: EnergyMeter, window_s: float, min_runs: int, device) -> tuple:
    """Joules per run of ``segment`` on ``inputs``, and the runs it took."""
    with torch.no_grad():
        segment(*inputs)
        _synchronise(device)
        start = meter.mark()
        runs = 0
        deadline = time.monotonic() + window_s
        while runs < min_runs or time.monotonic() < deadline:
            segment(*inputs)
            runs += 1
        _synchronise(device)
        end = meter.mark()
    return meter.joules(start, end) / runs, runs


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
