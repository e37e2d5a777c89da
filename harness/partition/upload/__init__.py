"""Upload plans, registered by name like the partitioners: in which pieces, and in which order, a
client uploads a model's weights to a server that has only its architecture, so that queries use the
server as early as possible. They read an ``UploadChain`` and return an ``UploadPlan``; they never
touch sockets or Ansible.

``all-at-once`` and ``layerwise`` are the baselines, ``ionn`` is IONN's penalised shortest paths
(``K`` or the fine ``step``), ``efficiency`` and ``recursive-efficiency`` are seed 004's. A user's
planner is ``package.module:function(chain, **options)`` from experiments/.

Every plan is checked before it is believed: it carries only units that cost an upload (the others
are on the server from the start), each at most once, and every such unit of the optimum.
"""

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import BadInput
from harness.model.user_code import user_function
from harness.partition.upload.baselines import all_at_once, layerwise
from harness.partition.upload.chain import Unit, UploadChain
from harness.partition.upload.efficiency import efficiency, recursive_efficiency
from harness.partition.upload.ionn import ionn
from harness.partition.upload.timeline import FIRST_QUERY, Timeline, UploadPlan, timeline

Planner = Callable[..., UploadPlan]
_PLANNERS: dict[str, Planner] = {
    "all-at-once": all_at_once,
    "layerwise": layerwise,
    "ionn": ionn,
    "efficiency": efficiency,
    "recursive-efficiency": recursive_efficiency,
}


def planner_names() -> list[str]:
    return sorted(_PLANNERS)


def check_options(name: str, options: dict) -> None:
    """Refuse options the planner does not take (a planner checks the values itself)."""
    planner = _resolve(name)
    accepted = inspect.signature(planner).parameters
    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in accepted.values()):
        return
    unknown = sorted(set(options) - set(accepted) - {"chain"})
    if unknown:
        allowed = ", ".join(key for key in accepted if key != "chain") or "none"
        raise BadInput(f"upload plan '{name}': unknown option {', '.join(unknown)}; expected {allowed}")


@dataclass(frozen=True)
class PlannedUpload:
    plan: UploadPlan
    timeline: Timeline
    decision_ns: int


def plan_upload(name: str, chain: UploadChain, **options) -> PlannedUpload:
    """Planner ``name``'s plan for ``chain`` (timed alone), checked, and its predicted timeline."""
    check_options(name, options)
    planner = _resolve(name)
    started = time.perf_counter_ns()
    plan = planner(chain, **options)
    elapsed = time.perf_counter_ns() - started
    if not isinstance(plan, UploadPlan):
        raise BadInput(f"upload plan '{name}' gave {type(plan).__name__}; expected an UploadPlan")
    _check(name, chain, plan)
    return PlannedUpload(plan, timeline(chain, plan), elapsed)


def _check(name: str, chain: UploadChain, plan: UploadPlan) -> None:
    seen: set[int] = set()
    for units in plan.partitions:
        for index in units:
            if index not in chain.costly or index in seen:
                raise BadInput(
                    f"upload plan '{name}' uploads unit {index!r} twice, or one that needs no upload; "
                    f"expected each of {list(chain.costly)} at most once"
                )
            seen.add(index)
        if not units:
            raise BadInput(f"upload plan '{name}' has an empty partition")
    missing = sorted(set(chain.optimal_units()) - seen)
    if missing:
        shown = ", ".join(chain.units[index].name for index in missing[:3])
        raise BadInput(
            f"upload plan '{name}' never uploads {shown}; expected every unit the fastest query runs on the server"
        )


def _resolve(name: str) -> Planner:
    planner = user_function("upload plan", name) if ":" in name else _PLANNERS.get(name)
    if planner is None:
        raise BadInput(f"upload plan '{name}': expected one of {', '.join(planner_names())} or package.module:function")
    return planner


__all__ = [
    "FIRST_QUERY",
    "PlannedUpload",
    "Timeline",
    "Unit",
    "UploadChain",
    "UploadPlan",
    "check_options",
    "plan_upload",
    "planner_names",
]
