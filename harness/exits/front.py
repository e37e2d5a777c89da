"""The settings worth keeping: those no other setting beats on every objective at once.

A progressive-inference sweep measures many (placement, threshold) pairs, each a point of
latency, error and cost; a reader wants the few that are not dominated. Lower is better on every
column; a point is dominated when another is no worse on every objective and better on one.
Equal points are all kept (neither beats the other).
"""

import numpy as np


def non_dominated(points) -> list[int]:
    """Indices of the rows of ``points`` (n by objectives, lower is better) on the front, in order.
    Sorting by the objectives first means a row can only be dominated by one before it."""
    values = np.asarray(points, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"points of shape {values.shape}: expected rows of objectives")
    order = np.lexsort(values.T[::-1])
    kept: list[int] = []
    for index in order:
        row = values[index]
        beaten = any(np.all(values[other] <= row) and np.any(values[other] < row) for other in kept)
        if not beaten:
            kept.append(int(index))
    return sorted(kept)
