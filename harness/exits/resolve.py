"""A model's exit plan, resolved on its traced graph: the cut a split rule picks among the cuts
where one tensor crosses, then each part's exits, named by the layer they follow, with the share
of the model's FLOPs and parameter bytes up to them, as a sweep records the placement it used."""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.errors import BadInput
from harness.exits.placement import PARETO_ALPHA, Direction, Method, place_exits
from harness.exits.split_rules import Bound, split_by_layers, split_by_memory
from harness.model.graph import SplitGraph
from harness.partition.situation import layer_param_bytes

Axis = Literal["nodes", "flops"]


@dataclass(frozen=True)
class SplitRule:
    """``memory`` (parameter bytes of the head, within ``bound``) or ``layers``, at ``fraction``."""

    by: Literal["memory", "layers"]
    fraction: float
    bound: Bound = "at_most"

    @classmethod
    def parse(cls, text: str) -> "SplitRule":
        """``memory:0.7``, ``memory:0.7:at_least`` or ``layers:0.5``."""
        parts = text.split(":")
        try:
            if parts[0] == "memory" and len(parts) in (2, 3):
                return cls("memory", float(parts[1]), parts[2] if len(parts) == 3 else "at_most")  # type: ignore[arg-type]
            if parts[0] == "layers" and len(parts) == 2:
                return cls("layers", float(parts[1]))
        except ValueError:
            pass
        raise BadInput(f"split rule {text!r}: expected memory:FRACTION[:at_most|at_least] or layers:FRACTION")


@dataclass(frozen=True)
class ResolvedExit:
    part: str
    number: int
    position: float
    """On the part's axis before snapping (nodes from 1, or FLOPs from the part's start)."""
    cut: int
    after: str
    flops_share: float
    """Of the whole model's FLOPs, up to the exit."""
    param_share: float
    """Of the whole model's parameter bytes, up to the exit."""


@dataclass(frozen=True)
class ExitPlan:
    model: str
    rule: SplitRule
    cut: int
    after: str
    param_share: float
    exits: tuple[ResolvedExit, ...]


def plan_exits(
    split: SplitGraph,
    rule: SplitRule,
    method: Method = "linear",
    per_part: int = 1,
    axis: Axis = "nodes",
    alpha: float = PARETO_ALPHA,
    direction: Direction = "early",
) -> ExitPlan:
    """Split ``split`` by ``rule`` at a single-tensor cut, then place ``per_part`` exits in each part."""
    layers = len(split.layers)
    allowed = [cut.index for cut in split.cuts if cut.single_tensor]
    params = np.asarray(layer_param_bytes(split), dtype=float)
    flops = np.array([sum(split.facts.nodes[name].flops for name in layer.nodes) for layer in split.layers], float)
    if rule.by == "memory":
        cut = split_by_memory(params, rule.fraction, rule.bound, allowed)
    else:
        cut = split_by_layers(layers, rule.fraction, allowed)
    if axis not in ("nodes", "flops"):
        raise BadInput(f"exit axis {axis!r}: expected nodes or flops")
    values = flops if axis == "flops" else np.ones(layers)
    cumulative_params, cumulative_flops = np.cumsum(params), np.cumsum(flops)
    exits = []
    for part, (start, end) in (("edge", (0, cut)), ("cloud", (cut, layers))):
        for placed in place_exits(start, end, per_part, method, values[start:end], allowed, alpha, direction):
            exits.append(
                ResolvedExit(
                    part,
                    placed.number,
                    placed.position,
                    placed.cut,
                    split.layers[placed.cut - 1].name,
                    _share(cumulative_flops, placed.cut),
                    _share(cumulative_params, placed.cut),
                )
            )
    return ExitPlan(split.name, rule, cut, split.layers[cut - 1].name, _share(cumulative_params, cut), tuple(exits))


def _share(cumulative: np.ndarray, cut: int) -> float:
    return float(cumulative[cut - 1] / cumulative[-1]) if cumulative[-1] > 0 else 0.0
