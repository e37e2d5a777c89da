"""Placements a researcher compares against: everything on the device, everything on the best
host of the top tier, and the segments split evenly over one host per tier.

They are priced by the same cost model as the solvers, so their regret against ``dp`` is exact.
"""

import time

import numpy as np

from harness.partition.placement.problem import Problem, require_objective
from harness.partition.placement.result import Placement


def device_only(problem: Problem, objective: str = "latency") -> Placement:
    return _best_of("device-only", problem, objective, np.array([[problem.source] * problem.segments]))


def cloud_only(problem: Problem, objective: str = "latency") -> Placement:
    """Every segment on one host of the highest tier: the one this objective prices best."""
    top = np.nonzero(problem.tiers == problem.tiers.max())[0]
    return _best_of("cloud-only", problem, objective, np.repeat(top[:, None], problem.segments, axis=1))


def even_split(problem: Problem, objective: str = "latency") -> Placement:
    """Equal runs of segments, one per tier from the source's up, each on the tier's host that
    computes its run fastest (the source itself on its own tier)."""
    tiers = np.unique(problem.tiers[problem.tiers >= problem.tiers[problem.source]])[: problem.segments]
    row = np.empty(problem.segments, dtype=np.int64)
    for tier, run in zip(tiers, np.array_split(np.arange(problem.segments), tiers.size), strict=True):
        if tier == problem.tiers[problem.source]:
            row[run] = problem.source
            continue
        members = np.nonzero(problem.tiers == tier)[0]
        row[run] = members[np.argmin(problem.compute_s[np.ix_(members, run)].sum(axis=1))]
    return _best_of("even-split", problem, objective, row[None, :])


def _best_of(strategy: str, problem: Problem, objective: str, rows: np.ndarray) -> Placement:
    started = time.perf_counter()
    values = problem.price(rows, require_objective(objective))
    index = int(np.argmin(values))
    elapsed = time.perf_counter() - started
    if not np.isfinite(values[index]):
        return Placement(strategy, objective, None, float("inf"), "infeasible", elapsed)
    hosts = tuple(int(host) for host in rows[index])
    return Placement(strategy, objective, hosts, float(values[index]), "heuristic", elapsed)
