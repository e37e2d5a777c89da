"""A model's exit plan, resolved on its traced graph: the cut a split rule picks among the cuts
where one tensor crosses, then each part's exits, named by the layer they follow, with the share
of the model's FLOPs and parameter bytes up to them, as a sweep records the placement it used."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from harness.errors import BadInput
from harness.exits.placement import PARETO_ALPHA, Direction, Method, place_exits
from harness.exits.split_rules import Bound, split_by_latency, split_by_layers, split_by_memory
from harness.model.graph import SplitGraph
from harness.partition.situation import layer_param_bytes, profiles_from_layers
from harness.results import ResultsFolder

Axis = Literal["nodes", "flops", "time"]
"""What an exit's position is measured along: layers, FLOPs, or profiled time (each part on its host's)."""
Locality = Literal["within", "across"]


@dataclass(frozen=True)
class SplitRule:
    """``memory`` (parameter bytes of the head, within ``bound``) or ``layers``, at ``fraction``; or
    ``latency``, the seed's rule on per-layer profiles (``fraction`` unused)."""

    by: Literal["memory", "layers", "latency"]
    fraction: float = 0.0
    bound: Bound = "at_most"

    @classmethod
    def parse(cls, text: str) -> "SplitRule":
        """``memory:0.7``, ``memory:0.7:at_least``, ``layers:0.5`` or ``latency``."""
        parts = text.split(":")
        try:
            if parts[0] == "memory" and len(parts) in (2, 3):
                return cls("memory", float(parts[1]), parts[2] if len(parts) == 3 else "at_most")  # type: ignore[arg-type]
            if parts[0] == "layers" and len(parts) == 2:
                return cls("layers", float(parts[1]))
            if parts == ["latency"]:
                return cls("latency")
        except ValueError:
            pass
        raise BadInput(f"split rule {text!r}: expected memory:FRACTION[:at_most|at_least], layers:FRACTION or latency")

    def describe(self) -> str:
        if self.by == "latency":
            return "latency (the head on the edge within the whole network on the cloud)"
        bound = f", {self.bound.replace('_', ' ')}" if self.by == "memory" else ""
        return f"{self.by} at {self.fraction:g}{bound}"


@dataclass(frozen=True)
class ResolvedExit:
    part: str
    number: int
    position: float
    """On the part's axis before snapping (nodes from 1, or FLOPs or ns from the part's start)."""
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
    locality: Locality = "within"
    """``within``: each part's exits placed inside it (the seed's); ``across``: on the whole network."""


def plan_exits(
    split: SplitGraph,
    rule: SplitRule,
    method: Method = "linear",
    per_part: int = 1,
    axis: Axis = "nodes",
    alpha: float = PARETO_ALPHA,
    direction: Direction = "early",
    profiles: tuple[list[float], list[float]] | None = None,
    cut: int | None = None,
    transfer: Sequence[float] | None = None,
    locality: Locality = "within",
) -> ExitPlan:
    """Split ``split`` by ``rule`` at a single-tensor cut, then place ``per_part`` exits in each part.
    ``profiles``: each layer's edge and cloud time (ns), which the latency rule needs; ``cut``: a
    single-tensor cut taken instead of the rule's (a manifest's listed cuts); ``transfer``: each cut
    position's transfer time (as the profiles count), which the latency rule then adds to the head;
    ``locality: across`` places ``2 * per_part`` exits on the whole network instead."""
    layers = len(split.layers)
    allowed = [item.index for item in split.cuts if item.single_tensor]
    params = np.asarray(layer_param_bytes(split), dtype=float)
    flops = np.array([sum(split.facts.nodes[name].flops for name in layer.nodes) for layer in split.layers], float)
    if cut is not None:
        if cut not in allowed or not 0 < cut < layers:
            raise BadInput(f"cut {cut}: expected a cut inside the model where one tensor crosses, to split exits at")
    elif rule.by == "memory":
        cut = split_by_memory(params, rule.fraction, rule.bound, allowed)
    elif rule.by == "layers":
        cut = split_by_layers(layers, rule.fraction, allowed)
    elif profiles is None:
        raise BadInput("the latency rule needs each layer's edge and cloud time: a sweep's profiles (--profile)")
    else:
        cut = split_by_latency(*profiles, allowed=allowed, transfer_s=transfer)
    if axis == "time":
        if profiles is None:
            raise BadInput("the time axis places exits by profiled time: expected a sweep's profiles (--profile)")
        values = np.concatenate([np.asarray(profiles[0][:cut], float), np.asarray(profiles[1][cut:], float)])
    elif axis in ("nodes", "flops"):
        values = flops if axis == "flops" else np.ones(layers)
    else:
        raise BadInput(f"exit axis {axis!r}: expected nodes, flops or time")
    cumulative_params, cumulative_flops = np.cumsum(params), np.cumsum(flops)
    if locality == "across":
        # The baseline the seed argues against: all the exits placed on the whole network, ignoring
        # the cut (never on it); each then belongs to the part its attach point falls in.
        inside = [item for item in allowed if item != cut]
        whole = place_exits(0, layers, 2 * per_part, method, values, inside, alpha, direction)
        placements = [("edge" if placed.cut < cut else "cloud", placed) for placed in whole]
    elif locality == "within":
        placements = [
            (part, placed)
            for part, (start, end) in (("edge", (0, cut)), ("cloud", (cut, layers)))
            for placed in place_exits(start, end, per_part, method, values[start:end], allowed, alpha, direction)
        ]
    else:
        raise BadInput(f"exit locality {locality!r}: expected within or across")
    exits = tuple(
        ResolvedExit(
            part,
            placed.number,
            placed.position,
            placed.cut,
            split.layers[placed.cut - 1].name,
            _share(cumulative_flops, placed.cut),
            _share(cumulative_params, placed.cut),
        )
        for part, placed in placements
    )
    share = _share(cumulative_params, cut)
    return ExitPlan(split.name, rule, cut, split.layers[cut - 1].name, share, exits, locality)


def _share(cumulative: np.ndarray, cut: int) -> float:
    return float(cumulative[cut - 1] / cumulative[-1]) if cumulative[-1] > 0 else 0.0


def folder_profiles(folder: Path, split: SplitGraph, run: str | None = None) -> tuple[list[float], list[float]]:
    """Each layer's edge and cloud time (ns) as the sweep in ``folder`` profiled ``split``'s model:
    of ``run``, or of the one run of that model there."""
    results = ResultsFolder.open(folder)
    if not results.layers.is_file():
        raise BadInput(f"{results.layers} does not exist; expected a sweep's folder with per-layer profiles")
    layers = pd.read_parquet(results.layers)
    runs = sorted(set(layers.loc[layers["model"] == split.name, "run"]))
    if run is None:
        if len(runs) != 1:
            raise BadInput(
                f"{results.layers}: {len(runs)} runs of model '{split.name}' ({', '.join(runs) or 'none'}); "
                "expected one, or name it with --run"
            )
        run = runs[0]
    return profiles_from_layers(layers, run, split, str(results.layers))
