"""One cut, two parts: the seed's rules for where the edge part ends.

Cut ``c`` is after layer ``c`` (cut 0 is the input, cut ``L`` the output), as everywhere in the
harness. Only cuts in ``allowed`` are chosen (with exits, the cuts where a single tensor crosses),
and only inner ones, so each part keeps at least one layer. A rule that no allowed cut satisfies
is an error that says what the nearest cut would have given, never a silent fallback.
"""

from collections.abc import Sequence
from typing import Literal

import numpy as np

from harness.errors import BadInput

Bound = Literal["at_most", "at_least"]


def _inner(allowed: Sequence[int] | None, layers: int) -> list[int]:
    cuts = sorted({cut for cut in (range(1, layers) if allowed is None else allowed) if 0 < cut < layers})
    if not cuts:
        raise BadInput(f"no cut between layer 1 and layer {layers - 1} is allowed: expected at least one inner cut")
    return cuts


def _fraction(fraction: float) -> float:
    if not 0 < fraction < 1:
        raise BadInput(f"split fraction {fraction}: expected a number between 0 and 1, like 0.7")
    return fraction


def split_by_memory(
    param_bytes: Sequence[float], fraction: float, bound: Bound = "at_most", allowed: Sequence[int] | None = None
) -> int:
    """The cut whose head holds ``fraction`` of the parameter bytes: the deepest with at most that
    share (``at_most``: the edge's memory is the limit), or the shallowest with at least it."""
    cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(param_bytes, dtype=float))])
    budget = _fraction(fraction) * cumulative[-1]
    cuts = _inner(allowed, len(param_bytes))
    if bound == "at_most":
        fitting = [cut for cut in cuts if cumulative[cut] <= budget]
        if fitting:
            return fitting[-1]
        nearest = cuts[0]
    elif bound == "at_least":
        fitting = [cut for cut in cuts if cumulative[cut] >= budget]
        if fitting:
            return fitting[0]
        nearest = cuts[-1]
    else:
        raise BadInput(f"split bound {bound!r}: expected at_most or at_least")
    share = cumulative[nearest] / cumulative[-1]
    raise BadInput(
        f"no allowed cut leaves {bound.replace('_', ' ')} {fraction:.0%} of the parameter bytes on the edge "
        f"(the nearest, cut {nearest}, leaves {share:.1%})"
    )


def split_by_layers(layers: int, fraction: float, allowed: Sequence[int] | None = None) -> int:
    """The deepest allowed cut with at most ``fraction`` of the layers on the edge."""
    limit = _fraction(fraction) * layers
    cuts = _inner(allowed, layers)
    fitting = [cut for cut in cuts if cut <= limit]
    if not fitting:
        raise BadInput(
            f"no allowed cut leaves at most {fraction:.0%} of the {layers} layers on the edge "
            f"(the first is after layer {cuts[0]})"
        )
    return fitting[-1]


def split_by_latency(
    edge_s: Sequence[float],
    cloud_s: Sequence[float],
    allowed: Sequence[int] | None = None,
    transfer_s: Sequence[float] | None = None,
) -> int:
    """The seed's rule: the deepest cut whose head, on the edge, takes at most as long as the whole
    network on the cloud (per-layer profiled seconds). The link is left out, as in the seed, unless
    ``transfer_s`` gives each cut's transfer time (index = cut), which is then added to the head."""
    edge, cloud = np.asarray(edge_s, dtype=float), np.asarray(cloud_s, dtype=float)
    if edge.shape != cloud.shape:
        raise BadInput(f"edge profile of {edge.size} layers, cloud profile of {cloud.size}: expected the same layers")
    head = np.concatenate([[0.0], np.cumsum(edge)])
    if transfer_s is not None:
        transfer = np.asarray(transfer_s, dtype=float)
        if transfer.size != head.size:
            raise BadInput(f"{transfer.size} transfer times: expected one per cut ({head.size})")
        head = head + transfer
    whole = float(cloud.sum())
    cuts = _inner(allowed, edge.size)
    fitting = [cut for cut in cuts if head[cut] <= whole]
    if not fitting:
        raise BadInput(
            f"no allowed cut runs its head on the edge within the cloud's {whole * 1e3:.3g} ms for the whole "
            f"network (cut {cuts[0]} takes {head[cuts[0]] * 1e3:.3g} ms)"
        )
    return fitting[-1]
