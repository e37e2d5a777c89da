"""The exact strategy: a dynamic program over contiguous blocks of a chain of segments.

Because hops only climb tiers, the (cut, host) states form a DAG and the best placement is a
shortest path through it. ``best[j, h]`` is the cheapest way to have run segments ``0..j-1`` with
the last block on ``h``; ``entry[i, h]`` the cheapest way to have the tensors of cut ``i`` on ``h``
ready to start a block. Entering costs a minimum over the hosts of lower tiers (O(N^2) per cut);
a block costs a minimum over where it starts (O(L) per end and host), so the whole program is
O(L*N^2 + L^2*N) time and O(L*N) memory besides one N x N hop matrix at a time.

For ``throughput`` the same program runs with ``max`` where latency adds: the slowest stage of a
path is decided by the same prefix structure, so the program stays exact. Its value is the
optimum, hence a lower bound for every other strategy; it is reported as ``Problem.price`` gives it,
so that every strategy's figure comes from one sum in one order.
"""

import time

import numpy as np

from harness.partition.placement.problem import Problem, require_objective
from harness.partition.placement.result import Placement


def solve(problem: Problem, objective: str = "latency") -> Placement:
    started = time.perf_counter()
    combine = np.add if require_objective(objective) == "latency" else np.maximum
    hosts, segments = problem.hosts, problem.segments
    entry = np.full((segments, hosts), np.inf)
    came_from = np.full((segments, hosts), -1, dtype=np.int64)
    best = np.full((segments + 1, hosts), np.inf)
    block_start = np.full((segments + 1, hosts), -1, dtype=np.int64)
    entry[0] = problem.hop_s(0)[problem.source]
    came_from[0] = problem.source
    prefix, memory = problem.compute_prefix, problem.memory_prefix
    for end in range(1, segments + 1):
        if end > 1:
            hop = problem.hop_s(end - 1)
            into = np.where(problem.climbs, combine(best[end - 1][:, None], hop), np.inf)
            came_from[end - 1] = np.argmin(into, axis=0)
            entry[end - 1] = into[came_from[end - 1], np.arange(hosts)]
        starts = np.arange(end)
        block = prefix[:, end][None, :] - prefix[:, :end].T
        fits = (memory[end] - memory[starts])[:, None] <= problem.memory_bytes[None, :]
        candidates = np.where(fits, combine(entry[:end], block), np.inf)
        block_start[end] = np.argmin(candidates, axis=0)
        best[end] = candidates[block_start[end], np.arange(hosts)]
    reply = problem.hop_s(segments)[:, problem.source]
    totals = combine(best[segments], reply)
    last = int(np.argmin(totals))
    elapsed = time.perf_counter() - started
    if not np.isfinite(totals[last]):
        return Placement("dp", objective, None, float("inf"), "infeasible", elapsed)
    placement = np.empty(segments, dtype=np.int64)
    host, end = last, segments
    while end > 0:
        start = int(block_start[end, host])
        placement[start:end] = host
        host, end = int(came_from[start, host]), start
    value = float(problem.price(placement[None, :], objective)[0])
    return Placement("dp", objective, tuple(int(h) for h in placement), value, "optimal", elapsed, value)
