"""Re-planning with hysteresis: when to leave a running placement for a better one.

Every interval the links are measured again and a strategy solves the problem anew. Measurements
are noisy, and two placements a few percent apart would trade places round after round, each
switch costing a deployment; so a new placement replaces the running one only when it is predicted
to be at least ``min_gain`` faster (as a fraction of the running one's latency, both priced on the
same fresh measurement) in ``rounds`` consecutive rounds, and then for the placement that wins the
last of them. The rounds count the running placement being beaten, not one challenger winning each
time: two challengers within noise of each other (the same hosts, cut on either side of a ReLU)
trade first place round after round, and counting per challenger would reset the count each time
and delay a switch that every round agrees on. A running placement that can no longer run at all
(a link it uses is gone, a host no longer has the memory) is left at once.

Both placements are priced on the same measurement, so a link that slows down both alike moves
neither's gain: only a change that favours another placement does.
"""

from dataclasses import dataclass

import numpy as np

from harness.errors import BadInput
from harness.partition.placement.problem import Problem
from harness.partition.placement.result import Placement


@dataclass(frozen=True)
class AdaptPolicy:
    min_gain: float = 0.1
    rounds: int = 2

    def __post_init__(self):
        if not 0 <= self.min_gain < 1 or self.rounds < 1:
            raise BadInput(
                f"re-planning min_gain {self.min_gain}, rounds {self.rounds}: expected 0 <= min_gain < 1, rounds >= 1"
            )


@dataclass(frozen=True)
class Verdict:
    """One round's outcome: the running placement's and the best placement's predicted seconds on
    this round's measurement, the gain (``1 - best / running``), how many rounds in a row the running
    placement has been beaten by the margin, and whether to switch to the best now."""

    running: tuple[int, ...]
    running_s: float
    best: tuple[int, ...] | None
    best_s: float
    gain: float
    streak: int
    switch: bool
    reason: str


class Replanner:
    """The running placement and how many rounds in a row it has been beaten by the margin."""

    def __init__(self, policy: AdaptPolicy, running: tuple[int, ...], objective: str = "latency"):
        self.policy = policy
        self.running = tuple(running)
        self.objective = objective
        self._streak = 0

    def consider(self, problem: Problem, found: Placement) -> Verdict:
        """Weigh ``found`` (a strategy's answer on ``problem``, priced on this round's measurement)
        against the running placement; on a switch, ``found`` becomes the running one."""
        running_s = float(problem.price(np.array([self.running]), self.objective)[0])
        best = found.hosts if found.feasible else None
        best_s = found.value_s if best is not None else float("inf")
        gain = 1.0 if not np.isfinite(running_s) else (1.0 - best_s / running_s if running_s > 0 else 0.0)
        if best is None or best == self.running or gain < self.policy.min_gain:
            self._streak = 0
            reason = "no feasible placement" if best is None else "the running placement is best"
            if best is not None and best != self.running:
                reason = f"gain {gain:.1%} below min_gain {self.policy.min_gain:.1%}"
            return Verdict(self.running, running_s, best, best_s, gain, 0, False, reason)
        self._streak += 1
        if not np.isfinite(running_s):
            reason = "the running placement can no longer run"
        elif self._streak >= self.policy.rounds:
            reason = f"gain of at least {self.policy.min_gain:.1%} in {self._streak} rounds in a row"
        else:
            return Verdict(self.running, running_s, best, best_s, gain, self._streak, False, "waiting for more rounds")
        verdict = Verdict(self.running, running_s, best, best_s, gain, self._streak, True, reason)
        self.running, self._streak = best, 0
        return verdict
