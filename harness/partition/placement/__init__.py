"""Placement strategies over many hosts, registered by name like the partitioners: which host runs
which contiguous range of a model's segments, from per-host segment times, memory and the link
matrix. They read a ``Problem`` and return a ``Placement``; they never touch sockets or Ansible.

``dp`` is exact and fast; ``ilp`` is exact up to its time limit; ``genetic`` is addnn's heuristic
with its parameters; ``exhaustive`` enumerates every assignment (small instances, the reference);
``device-only``, ``cloud-only`` and ``even-split`` are the baselines. A user's strategy is
``package.module:function(problem, objective, **options)`` from experiments/.
"""

import inspect
from collections.abc import Callable

from harness.errors import BadInput
from harness.model.user_code import user_function
from harness.partition.placement import baselines, dp, exhaustive, genetic, ilp
from harness.partition.placement.problem import OBJECTIVES, Problem, Stage, require_objective
from harness.partition.placement.result import Placement

Strategy = Callable[..., Placement]
_STRATEGIES: dict[str, Strategy] = {
    "dp": dp.solve,
    "ilp": ilp.solve,
    "genetic": genetic.solve,
    "exhaustive": exhaustive.solve,
    "device-only": baselines.device_only,
    "cloud-only": baselines.cloud_only,
    "even-split": baselines.even_split,
}


def strategy_names() -> list[str]:
    return sorted(_STRATEGIES)


def place(name: str, problem: Problem, objective: str = "latency", **options) -> Placement:
    """Strategy ``name``'s placement of ``problem``, checked against the rules before it is believed."""
    strategy = user_function("placement strategy", name) if ":" in name else _STRATEGIES.get(name)
    if strategy is None:
        known = ", ".join(strategy_names())
        raise BadInput(f"placement strategy '{name}': expected one of {known} or package.module:function")
    require_objective(objective)
    accepted = inspect.signature(strategy).parameters
    if not any(parameter.kind is parameter.VAR_KEYWORD for parameter in accepted.values()):
        unknown = sorted(set(options) - set(accepted) - {"problem", "objective"})
        if unknown:
            allowed = ", ".join(key for key in accepted if key not in ("problem", "objective")) or "none"
            raise BadInput(f"placement strategy '{name}': unknown option {', '.join(unknown)}; expected {allowed}")
    placement = strategy(problem, objective, **options)
    if not isinstance(placement, Placement):
        raise BadInput(f"placement strategy '{name}' gave {type(placement).__name__}; expected a Placement")
    if placement.hosts is not None:
        problem.check(placement.hosts)
    return placement


__all__ = ["OBJECTIVES", "Placement", "Problem", "Stage", "place", "strategy_names"]
