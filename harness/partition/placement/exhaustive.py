"""The reference strategy: every assignment of segments to hosts, priced and filtered by the rules.

It assumes nothing about the rules' structure (it enumerates host ^ segment assignments and lets
``Problem.price`` reject what breaks one), so it is what the other strategies are checked against.
It refuses instances beyond ``limit`` assignments instead of running for hours.
"""

import itertools
import time

import numpy as np

from harness.errors import BadInput
from harness.partition.placement.problem import Problem, require_objective
from harness.partition.placement.result import Placement

LIMIT = 2_000_000
_CHUNK = 200_000


def solve(problem: Problem, objective: str = "latency", limit: int = LIMIT) -> Placement:
    require_objective(objective)
    count = problem.hosts**problem.segments
    if count > limit:
        raise BadInput(
            f"strategy 'exhaustive': {problem.hosts} hosts ^ {problem.segments} segments = {count:,} placements; "
            f"expected at most {limit:,} (use dp or ilp)"
        )
    started = time.perf_counter()
    best_value, best_row = np.inf, None
    assignments = itertools.product(range(problem.hosts), repeat=problem.segments)
    while chunk := list(itertools.islice(assignments, _CHUNK)):
        rows = np.array(chunk, dtype=np.int64)
        values = problem.price(rows, objective)
        index = int(np.argmin(values))
        if values[index] < best_value:
            best_value, best_row = float(values[index]), rows[index]
    elapsed = time.perf_counter() - started
    if best_row is None:
        return Placement("exhaustive", objective, None, float("inf"), "infeasible", elapsed)
    hosts = tuple(int(host) for host in best_row)
    return Placement("exhaustive", objective, hosts, best_value, "optimal", elapsed, best_value)
