"""Where a part's exits attach, after the network is split.

Each method gives every exit a fraction of the part along an axis (nodes, FLOPs or profiled
time); the exit then snaps to the nearest cut inside the part where a single tensor crosses, so
the exit reads one tensor and never one of another part.

- ``linear``: exit i of k at i/(k+1) of the part.
- ``pareto``: the seed cites the 80-20 rule: the i/(k+1) quantiles of a Pareto distribution with
  shape ``alpha`` (default log_4 5, the shape whose top 20% hold 80%) truncated to [1, n+1), a
  unit of it per node of the n, so exits crowd where the part begins (``direction: early``) or,
  mirrored, where it ends (``late``).
- ``flops``: Shallow-Deep Networks' fixed fractions, 15%, 30% and 45% of the part's FLOPs.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.errors import BadInput

Method = Literal["linear", "pareto", "flops"]
Direction = Literal["early", "late"]
MAX_PER_PART = 3
"""The seed limits each part to three exits, for the memory they cost."""
PARETO_ALPHA = math.log(5, 4)
SDN_FRACTIONS = (0.15, 0.30, 0.45)


@dataclass(frozen=True)
class ExitPlacement:
    """One exit: ``position`` on the part's axis before snapping (in axis units from the part's
    start; nodes count from 1), and ``cut``, where it attaches (after that layer)."""

    number: int
    position: float
    cut: int


def fractions(method: Method, count: int, layers: int, alpha: float = PARETO_ALPHA, direction: Direction = "early"):
    """Each exit's fraction of a part of ``layers`` layers along the axis, before snapping."""
    if not 1 <= count <= MAX_PER_PART:
        raise BadInput(f"{count} exits per part: expected 1 to {MAX_PER_PART} (each exit costs memory on its host)")
    quantiles = np.arange(1, count + 1) / (count + 1)
    if method == "linear":
        return quantiles
    if method == "flops":
        return np.array(SDN_FRACTIONS[:count])
    if method != "pareto":
        raise BadInput(f"exit placement {method!r}: expected linear, pareto or flops")
    if not alpha > 0:
        raise BadInput(f"pareto alpha {alpha}: expected a shape above 0 (default log_4 5 = {PARETO_ALPHA:.4f})")
    tail = (1.0 / (layers + 1)) ** alpha
    nodes = (1 - quantiles * (1 - tail)) ** (-1 / alpha)
    if direction == "late":
        nodes = layers + 2 - nodes
    elif direction != "early":
        raise BadInput(f"pareto direction {direction!r}: expected early or late")
    return nodes / layers


def place_exits(
    start: int,
    end: int,
    count: int,
    method: Method = "linear",
    axis: Sequence[float] | None = None,
    allowed: Sequence[int] | None = None,
    alpha: float = PARETO_ALPHA,
    direction: Direction = "early",
) -> list[ExitPlacement]:
    """The exits of the part from cut ``start`` to cut ``end``. ``axis`` has one value per layer of
    the part (its FLOPs or profiled time; ones, the default, count nodes); ``allowed`` the cuts an
    exit may attach to (default every one). Two exits never share a cut: a later one takes the
    nearest free cut; an exit with none left is dropped, so a short part may get fewer."""
    layers = end - start
    if layers < 2:
        raise BadInput(f"part from cut {start} to {end}: expected at least two layers to place an exit between")
    values = np.ones(layers) if axis is None else np.asarray(axis, dtype=float)
    if values.size != layers or (values < 0).any():
        raise BadInput(f"axis of {values.size} values for a part of {layers} layers: expected one non-negative each")
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    inside = sorted({cut for cut in (allowed if allowed is not None else range(start, end)) if start < cut < end})
    placed: list[ExitPlacement] = []
    free = list(inside)
    for number, fraction in enumerate(fractions(method, count, layers, alpha, direction), start=1):
        position = float(fraction * cumulative[-1])
        if not free:
            break
        cut = min(free, key=lambda candidate: (abs(cumulative[candidate - start] - position), candidate))
        free.remove(cut)
        placed.append(ExitPlacement(number, position, cut))
    return placed
