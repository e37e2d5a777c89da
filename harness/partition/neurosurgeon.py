"""The seed's linear-regression partitioner, in the style of Neurosurgeon.

Each host's warm-up profile gives, per layer type, a line ``latency = a * m + b`` over the type's
layers, where ``m`` is the layer's parameter bytes (precision x elements, summed over its
parameters; the seed's Eq. 1 and 2). The edge fetches the cloud's lines and predicts both hosts'
latency of every layer from them. The pick is the first cut ``j`` where sending what is live plus
the cloud's remaining layers beats the edge's remaining layers (the seed's inequality 3; with a
cloud that is faster at every layer this is inequality 4), or the last cut when none does. The cut
minimising the predicted total is reported beside it.

A type whose layers all hold the same parameter bytes (every ReLU holds none) gets a flat line at
their mean latency, which is what least squares gives when ``m`` does not vary.
"""

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from harness.partition.decision import Decision
from harness.partition.situation import LayerCost, Situation


@dataclass(frozen=True)
class Line:
    slope: float
    intercept: float

    def __call__(self, x: float) -> float:
        return self.slope * x + self.intercept


def fit(xs: list[float], ys: list[float]) -> Line:
    """Least-squares line through the points; flat at the mean when x does not vary."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    spread = x - x.mean()
    denominator = float(spread @ spread)
    if denominator == 0.0:
        return Line(0.0, float(y.mean()))
    slope = float(spread @ (y - y.mean())) / denominator
    return Line(slope, float(y.mean()) - slope * float(x.mean()))


def regressions(layers: list[LayerCost], side: str) -> dict[str, Line]:
    """One line per layer type, from one host's profile (``side`` is ``edge`` or ``cloud``)."""
    points: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for layer in layers:
        xs, ys = points[layer.op]
        xs.append(layer.param_bytes)
        ys.append(layer.edge_ns if side == "edge" else layer.cloud_ns)
    return {op: fit(xs, ys) for op, (xs, ys) in points.items()}


def first_cut(situation: Situation, edge_ns: np.ndarray, cloud_ns: np.ndarray) -> int:
    """The first allowed cut where transfer plus the cloud's rest beats the edge's rest (inequality 3)."""
    edge_rest = np.concatenate((np.cumsum(edge_ns[::-1])[::-1], [0.0])) / 1e6
    cloud_rest = np.concatenate((np.cumsum(cloud_ns[::-1])[::-1], [0.0])) / 1e6
    for cut in situation.cuts:
        if situation.transfer_ms(cut) + cloud_rest[cut] < edge_rest[cut]:
            return cut
    return situation.cuts[-1]


def decide(situation: Situation) -> Decision:
    edge_lines = regressions(situation.layers, "edge")
    cloud_lines = regressions(situation.layers, "cloud")
    edge_ns = np.array([max(edge_lines[layer.op](layer.param_bytes), 0.0) for layer in situation.layers])
    cloud_ns = np.array([max(cloud_lines[layer.op](layer.param_bytes), 0.0) for layer in situation.layers])
    predicted = situation.totals_ms(edge_ns, cloud_ns)
    return Decision(
        "neurosurgeon",
        first_cut(situation, edge_ns, cloud_ns),
        predicted,
        argmin=min(predicted, key=lambda cut: (predicted[cut], cut)),
    )
