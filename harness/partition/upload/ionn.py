"""IONN's planner: the server side of the fastest query, with each unit not yet uploaded charged its
upload time times a penalty, is the next partition; the penalty falls until the fastest query is the
optimum's.

``K`` gives IONN's geometric penalties (1, K, K², ... for ``levels`` steps, then 0); ``step`` the
seed's fine sweep (1, 1 - step, 1 - 2·step, ... down to 0), which finds the efficiency planner's
partitions at the price of a shortest path per step. Each penalty is computed from its step number,
never by subtracting repeatedly, so the sweep ends at exactly 0 and always reaches the optimum.
"""

import math

from harness.errors import BadInput
from harness.partition.upload.chain import UploadChain
from harness.partition.upload.timeline import UploadPlan


def ionn(chain: UploadChain, K: float | None = None, step: float | None = None, levels: int = 7) -> UploadPlan:
    _check(K, step, levels)
    if step is not None:
        penalties = [max(0.0, 1.0 - number * step) for number in range(math.ceil(1.0 / step))] + [0.0]
    else:
        factor = 0.5 if K is None else K
        penalties = [factor**level for level in range(levels)] + [0.0]
    wanted = set(chain.optimal_units())
    uploaded = [False] * len(chain)
    partitions: list[tuple[int, ...]] = []
    upload = chain.upload_ms
    for penalty in penalties:
        if all(uploaded[index] for index in wanted):
            break
        extra = [penalty * cost for cost in upload]
        _, server = chain.best(server_extra=extra, uploaded=uploaded)
        new = tuple(index for index in server if not uploaded[index])
        if new:
            for index in new:
                uploaded[index] = True
            partitions.append(new)
    return UploadPlan("ionn", tuple(partitions))


def _check(K, step, levels) -> None:
    if K is not None and step is not None:
        raise BadInput("upload plan 'ionn': K and step; expected one (geometric penalties or the fine sweep)")
    for key, value in (("K", K), ("step", step)):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is not None and not (number and 0 < value < 1):
            raise BadInput(f"upload plan 'ionn': {key} is {value!r}; expected a number in (0, 1)")
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise BadInput(f"upload plan 'ionn': levels is {levels!r}; expected an integer of at least 1")
