"""The seed's linear-regression partitioner, in the style of Neurosurgeon.

Each host's warm-up profile gives, per layer type, a line ``latency = a * m + b`` over the type's
layers, where ``m`` is the layer's parameter bytes (precision x elements, summed over its
parameters; the seed's Eq. 1 and 2). The edge fetches the cloud's lines and predicts both hosts'
latency of every layer from them. The ``criterion`` says which cut they pick:

- ``argmin`` (default): the cut with the lowest predicted total, as Neurosurgeon itself (Kang et
  al.) picks.
- ``next-layer`` (the seed's inequality 4, the form its test-bed settled on): the first cut where
  sending what is live plus the cloud's time for the next layer beats the edge's time for that
  layer, or the last cut when none does.
- ``remaining`` (inequality 3): the first cut where sending what is live plus the cloud's time for
  all remaining layers beats the edge's time for them.

With ``objective: energy`` (and the edge's power while computing and its radio's while sending)
the pick minimises the edge's energy instead, as Neurosurgeon's energy mode does; the seed's
test-bed promises it.

The seed's two rules stop at the first cut where offloading pays, not at the best one, so the
default is the argmin; a rule's pick is reported with the argmin beside it. Measured in the virtual
lab (AlexNet, edge at half a core, tc link) the seed's inequality 4 picked a cut 19% slower than the
best at 10 MB/s in one sweep and 22% slower at 50 MB/s in another, and inequality 3 offloaded the
raw input at 50 MB/s, 16% slower; the argmin stayed within 7% of the best at 1, 4, 10 and 50 MB/s.

A type whose layers all hold the same parameter bytes (every ReLU holds none) gets a flat line at
their mean latency, which is what least squares gives when ``m`` does not vary. A line that goes
below zero for a small layer predicts zero.
"""

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from harness.errors import BadInput
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


CRITERIA = ("argmin", "next-layer", "remaining")


def first_cut(situation: Situation, edge_ns: np.ndarray, cloud_ns: np.ndarray, criterion: str = "next-layer") -> int:
    """The first allowed cut where offloading pays by ``criterion``; the last allowed cut otherwise."""
    if criterion == "remaining":
        edge_after = np.concatenate((np.cumsum(edge_ns[::-1])[::-1], [0.0])) / 1e6
        cloud_after = np.concatenate((np.cumsum(cloud_ns[::-1])[::-1], [0.0])) / 1e6
    elif criterion == "next-layer":
        edge_after = np.concatenate((edge_ns, [0.0])) / 1e6
        cloud_after = np.concatenate((cloud_ns, [0.0])) / 1e6
    else:
        raise BadInput(f"partitioner 'neurosurgeon': criterion '{criterion}', expected one of {', '.join(CRITERIA)}")
    for cut in situation.cuts:
        if cut < len(situation.layers) and situation.offload_ms(cut) + cloud_after[cut] < edge_after[cut]:
            return cut
    return situation.cuts[-1]


OBJECTIVES = ("latency", "energy")


def decide(
    situation: Situation,
    criterion: str = "argmin",
    objective: str = "latency",
    edge_watts: float | None = None,
    radio_watts: float | None = None,
) -> Decision:
    """The cut by ``criterion`` on predicted latency, or with ``objective: energy`` the cut that
    minimises the edge's predicted energy (``edge_energy_mj``)."""
    edge_lines = regressions(situation.layers, "edge")
    cloud_lines = regressions(situation.layers, "cloud")
    edge_ns = np.array([max(edge_lines[layer.op](layer.param_bytes), 0.0) for layer in situation.layers])
    cloud_ns = np.array([max(cloud_lines[layer.op](layer.param_bytes), 0.0) for layer in situation.layers])
    predicted = situation.totals_ms(edge_ns, cloud_ns)
    if objective == "energy":
        energy = edge_energy_mj(situation, edge_ns, edge_watts, radio_watts)
        cut = min(energy, key=lambda index: (energy[index], index))
        note = f"objective energy: {energy[cut]:.3g} mJ on the edge predicted at cut {cut}"
        return Decision("neurosurgeon", cut, predicted, argmin=cut, note=note)
    if objective != "latency":
        raise BadInput(f"partitioner 'neurosurgeon': objective '{objective}', expected one of {', '.join(OBJECTIVES)}")
    argmin = min(predicted, key=lambda cut: (predicted[cut], cut))
    cut = argmin if criterion == "argmin" else first_cut(situation, edge_ns, cloud_ns, criterion)
    return Decision("neurosurgeon", cut, predicted, argmin=argmin)


def edge_energy_mj(
    situation: Situation, edge_ns: np.ndarray, edge_watts: float | None, radio_watts: float | None
) -> dict[int, float]:
    """The edge's energy at every allowed cut, as Neurosurgeon counts a mobile device's: its compute
    (``edge_watts`` over the predicted time of the layers it runs) and its radio (``radio_watts``
    while the request and the reply cross at the link's rate). Waiting for the cloud is not
    charged: the device may sleep."""
    if edge_watts is None or radio_watts is None or edge_watts < 0 or radio_watts < 0:
        raise BadInput(
            "partitioner 'neurosurgeon': objective energy needs edge_watts (the edge computing) and "
            f"radio_watts (its radio sending), both >= 0 (got {edge_watts}, {radio_watts})"
        )
    compute = np.concatenate(([0.0], np.cumsum(edge_ns))) / 1e6 * edge_watts
    last = len(situation.layers)
    return {
        cut: compute[cut]
        + (
            0.0
            if cut == last
            else radio_watts * 1e3 * (situation.cut_bytes[cut] + situation.output_bytes) / situation.link.rate
        )
        for cut in situation.cuts
    }
