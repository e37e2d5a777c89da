"""The integer program, on the HiGHS solver that scipy ships, with a time limit.

Each segment goes to one host (binary ``x[j, h]``). Between consecutive segments a unit of flow
either stays on its host or moves along a link that climbs a tier (continuous ``stay`` and
``move``, integral whenever ``x`` is): the flow balances make the chosen hosts a path through the
(cut, host) DAG, so a host can never get its segments back after the flow left it. That is the
contiguity addnn's program gets wrong: constraining only that a host's segments are consecutive
where they change lets A,B,B,A through, a placement that cannot be deployed and is still reported
optimal. Memory is one knapsack row per host.

``latency`` is linear in ``x`` and ``move``; ``throughput`` minimises a period ``z`` above every
host's compute and every hop. The solver's status, its dual bound and its MIP gap are returned, so
a time limit is a result with a certified gap, not a crash. The matrix is built with array
operations: at 60 hosts and 22 segments it has about 80,000 columns.
"""

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from harness.partition.placement.problem import Problem, require_objective
from harness.partition.placement.result import Placement

TIME_LIMIT_S = 60.0
MIP_REL_GAP = 1e-9


@dataclass
class _Matrix:
    """A sparse constraint matrix assembled from blocks of (row, column, value) triples."""

    rows: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    lower: list[np.ndarray] = field(default_factory=list)
    upper: list[np.ndarray] = field(default_factory=list)
    count: int = 0

    def new_rows(self, count: int, lower: float, upper) -> np.ndarray:
        first = self.count
        self.count += count
        self.lower.append(np.full(count, lower, dtype=float))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=float), (count,)).copy())
        return np.arange(first, self.count)

    def put(self, rows, cols, values) -> None:
        rows, cols = np.broadcast_arrays(np.asarray(rows), np.asarray(cols))
        self.rows.append(rows.ravel())
        self.cols.append(cols.ravel())
        self.values.append(np.broadcast_to(np.asarray(values, dtype=float), rows.shape).ravel())

    def constraint(self, variables: int) -> LinearConstraint:
        matrix = coo_array(
            (np.concatenate(self.values), (np.concatenate(self.rows), np.concatenate(self.cols))),
            shape=(self.count, variables),
        ).tocsr()
        return LinearConstraint(matrix, np.concatenate(self.lower), np.concatenate(self.upper))


def solve(
    problem: Problem, objective: str = "latency", time_limit_s: float = TIME_LIMIT_S, mip_rel_gap: float = MIP_REL_GAP
) -> Placement:
    require_objective(objective)
    started = time.perf_counter()
    hosts, segments = problem.hosts, problem.segments
    x = np.arange(segments * hosts).reshape(segments, hosts)
    stay = x.size + np.arange((segments - 1) * hosts).reshape(segments - 1, hosts)
    nothing = np.zeros(0, dtype=np.int64)
    cuts, frms, tos, seconds = [nothing], [nothing], [nothing], [np.zeros(0)]
    for cut in range(1, segments):
        hop = problem.hop_s(cut)
        frm, to = np.nonzero(problem.climbs & np.isfinite(hop))
        cuts.append(np.full(frm.size, cut))
        frms.append(frm)
        tos.append(to)
        seconds.append(hop[frm, to])
    move_cut, move_from, move_to = (np.concatenate(part).astype(np.int64) for part in (cuts, frms, tos))
    move_s = np.concatenate(seconds)
    move = x.size + stay.size + np.arange(move_s.size)
    period = x.size + stay.size + move_s.size
    variables = period + (objective == "throughput")
    upper = np.ones(variables)
    entering = problem.hop_s(0)[problem.source]
    leaving = problem.hop_s(segments)[:, problem.source]
    upper[x[0][~np.isfinite(entering)]] = 0
    upper[x[-1][~np.isfinite(leaving)]] = 0
    entering, leaving = np.nan_to_num(entering, posinf=0.0), np.nan_to_num(leaving, posinf=0.0)
    matrix = _Matrix()
    one_host = matrix.new_rows(segments, 1, 1)
    matrix.put(one_host[:, None], x, 1.0)
    for segment_of_cut, host_of_move in ((1, move_from), (0, move_to)):
        balance = matrix.new_rows((segments - 1) * hosts, 0, 0).reshape(segments - 1, hosts)
        matrix.put(balance, x[1 - segment_of_cut : segments - segment_of_cut], 1.0)
        matrix.put(balance, stay, -1.0)
        matrix.put(balance[move_cut - 1, host_of_move], move, -1.0)
    bounded = np.nonzero(np.isfinite(problem.memory_bytes))[0]
    memory = matrix.new_rows(bounded.size, -np.inf, problem.memory_bytes[bounded])
    matrix.put(memory[:, None], x[:, bounded].T, problem.segment_bytes[None, :])
    cost = np.zeros(variables)
    if objective == "latency":
        cost[x] = problem.compute_s.T
        cost[move] = move_s
        cost[x[0]] += entering
        cost[x[-1]] += leaving
    else:
        cost[period] = 1.0
        upper[period] = np.inf
        host_rows = matrix.new_rows(hosts, 0, np.inf)
        matrix.put(host_rows, period, 1.0)
        matrix.put(host_rows[None, :], x, -problem.compute_s.T)
        for coefficient, columns in ((move_s, move), (entering, x[0]), (leaving, x[-1])):
            stage_rows = matrix.new_rows(columns.size, 0, np.inf)
            matrix.put(stage_rows, period, 1.0)
            matrix.put(stage_rows, columns, -coefficient)
    integrality = np.zeros(variables)
    integrality[x] = 1
    result = milp(
        cost,
        constraints=matrix.constraint(variables),
        integrality=integrality,
        bounds=Bounds(np.zeros(variables), upper),
        options={"time_limit": time_limit_s, "mip_rel_gap": mip_rel_gap, "disp": False},
    )
    elapsed = time.perf_counter() - started
    bound = getattr(result, "mip_dual_bound", None)
    gap = getattr(result, "mip_gap", None)
    details = (("variables", float(variables)), ("mip_gap", float("nan") if gap is None else float(gap)))
    if result.x is None:
        status = "infeasible" if result.status == 2 else "time-limit"
        return Placement("ilp", objective, None, float("inf"), status, elapsed, bound, details)
    chosen = np.argmax(result.x[x], axis=1)
    value = float(problem.price(chosen[None, :], objective)[0])
    status = "optimal" if result.status == 0 else "feasible"
    return Placement("ilp", objective, tuple(int(host) for host in chosen), value, status, elapsed, bound, details)
