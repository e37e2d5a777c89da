"""Partitioners, registered by name: schedules that say which cuts a sweep runs, and deciders that
pick one cut from the hosts' profiles and the link.

A schedule (the manifest's ``partitioner``) yields the ``(cut, repeat)`` pairs to run, in order:
``cyclic`` and ``round-robin`` are built in, a user's is ``package.module:function(cuts, repeats)``
from experiments/.
A decider (the manifest's ``evaluate``, and ``harness plan``) takes a ``Situation`` and returns a
``Decision``: ``neurosurgeon``, ``dads``, ``oracle`` and ``fixed`` are built in, a user's is
``package.module:function(situation, **options)``. A new one is a module and a line here.
"""

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from harness.errors import BadInput
from harness.model.user_code import user_function
from harness.partition import dads, fixed, neurosurgeon, oracle
from harness.partition.cyclic import cyclic
from harness.partition.decision import Decision
from harness.partition.round_robin import round_robin
from harness.partition.situation import Link, Situation

Schedule = Callable[[Sequence[int], int], Iterable[tuple[int, int]]]
Decider = Callable[..., Decision]
_PARTITIONERS: dict[str, Schedule] = {"cyclic": cyclic, "round-robin": round_robin}
_DECIDERS: dict[str, Decider] = {
    "neurosurgeon": neurosurgeon.decide,
    "dads": dads.decide,
    "oracle": oracle.decide,
    "fixed": fixed.decide,
}


def partitioner_names() -> list[str]:
    return sorted(_PARTITIONERS)


def decider_names() -> list[str]:
    return sorted(_DECIDERS)


def schedule(name: str, cuts: Sequence[int], repeats: int) -> list[tuple[int, int]]:
    """The pairs partitioner ``name`` asks for, each checked to use an allowed cut."""
    partitioner = user_function("partitioner", name) if ":" in name else _PARTITIONERS.get(name)
    if partitioner is None:
        raise BadInput(f"partitioner '{name}': expected one of {', '.join(partitioner_names())}")
    pairs = []
    for pair in partitioner(cuts, repeats):
        if not (isinstance(pair, tuple) and len(pair) == 2 and pair[0] in cuts and isinstance(pair[1], int)):
            raise BadInput(f"partitioner '{name}' gave {pair!r}; expected (cut, repeat) with cut in {list(cuts)}")
        pairs.append(pair)
    return pairs


@dataclass(frozen=True)
class Timed:
    decision: Decision
    decision_ns: int


def decide(name: str, situation: Situation, **options) -> Timed:
    """Run decider ``name`` on ``situation``, timing the decision alone (profiles are already in)."""
    decider = user_function("partitioner", name) if ":" in name else _DECIDERS.get(name)
    if decider is None:
        raise BadInput(f"partitioner '{name}': expected one of {', '.join(decider_names())} or package.module:function")
    started = time.perf_counter_ns()
    decision = decider(situation, **options)
    elapsed = time.perf_counter_ns() - started
    if not isinstance(decision, Decision) or decision.cut not in situation.cuts:
        shown = decision.cut if isinstance(decision, Decision) else type(decision).__name__
        raise BadInput(f"partitioner '{name}' gave {shown}; expected a Decision whose cut is in {situation.cuts}")
    return Timed(decision, elapsed)


__all__ = [
    "Decision",
    "Link",
    "Situation",
    "Timed",
    "cyclic",
    "decide",
    "decider_names",
    "partitioner_names",
    "schedule",
]
