"""What a placement strategy returns, so that every strategy can be compared with every other."""

from dataclasses import dataclass

from harness.partition.placement.problem import Problem, Stage


@dataclass(frozen=True)
class Placement:
    """``hosts``: one host index per segment, or None when the strategy found nothing feasible.
    ``status``: ``optimal`` (proven), ``feasible`` (a solver stopped at its limit with an incumbent),
    ``heuristic`` (no proof either way), ``not-found`` (a heuristic found nothing feasible),
    ``time-limit`` (stopped with nothing), ``infeasible`` (proven: no placement keeps the rules).
    ``bound_s``: a proven lower bound on the optimum where the strategy has one; ``details`` holds
    what is particular to a strategy (generations, MIP gap)."""

    strategy: str
    objective: str
    hosts: tuple[int, ...] | None
    value_s: float
    status: str
    solve_s: float
    bound_s: float | None = None
    details: tuple[tuple[str, float], ...] = ()

    @property
    def feasible(self) -> bool:
        return self.hosts is not None

    def stages(self, problem: Problem) -> list[Stage]:
        return problem.stages(self.hosts) if self.hosts is not None else []

    def gap_to(self, optimum_s: float) -> float | None:
        """How far above ``optimum_s`` this placement is, as a fraction (0.03 is 3% above)."""
        if self.hosts is None or not optimum_s > 0:
            return None
        return self.value_s / optimum_s - 1.0
