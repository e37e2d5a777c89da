"""Seed 004's planners: upload next the range of units with the highest efficiency (the latency a
query gains with the range on the server, over the range's upload time), and, recursively, a
sub-range of it while one gains anything at all.

Where this differs from the authors' code, and why:

- Efficiencies are priced again after every upload, from the new state: a range next to an uploaded
  one no longer pays to move its data to the server, so its worth changes (the seed's [D] goes from
  -1 to 1 once [C] is up). Keeping the old values picks stale ranges.
- Candidates are the ranges of optimal units not yet uploaded (the fastest query's server units
  when everything is up), never across an uploaded unit (units that cost no upload are up from the
  start and belong to any range around them), so every step uploads at least one unit and
  the plan ends after at most ``n`` steps: no floor on a penalty to loop on.
- A range costs at least one unit's upload, so no efficiency is infinite: a layer without weights
  is not a candidate of its own but on the server from the start (see ``chain``).
- Ties go to the larger gain, then to the earlier and shorter range, so plans are deterministic.

The first partition is the server side of the fastest query with the whole upload time charged (IONN's
first shortest path, penalty 1): every range on it gains more than it costs, so it needs no finer
split. Its separate ranges go up one after another, most efficient first.

Every range of a step is priced at once (a matrix over start and end): the state does not change
while the recursion narrows a pick, so the sub-ranges are read from the same matrix.
"""

import numpy as np

from harness.partition.upload.chain import State, UploadChain, runs
from harness.partition.upload.timeline import UploadPlan


def efficiency(chain: UploadChain) -> UploadPlan:
    return _plan(chain, "efficiency", recursive=False)


def recursive_efficiency(chain: UploadChain) -> UploadPlan:
    return _plan(chain, "recursive-efficiency", recursive=True)


def _plan(chain: UploadChain, name: str, recursive: bool) -> UploadPlan:
    costly = chain.costly
    index_of = {unit: position for position, unit in enumerate(costly)}
    wanted = np.zeros(len(costly), dtype=bool)
    wanted[[index_of[unit] for unit in chain.optimal_units()]] = True
    uploaded = np.zeros(len(costly), dtype=bool)
    partitions: list[tuple[int, ...]] = []
    priced = _Pricer(chain)

    def take(span: tuple[int, int]) -> None:
        uploaded[span[0] : span[1]] = True
        partitions.append(costly[span[0] : span[1]])

    _, first = chain.best(server_extra=chain.upload_ms, uploaded=[False] * len(chain))
    pending = runs(index_of[unit] for unit in first)
    while pending:
        worth, gain = priced(_state(chain, uploaded))
        best = max(pending, key=lambda span: (worth[span], gain[span], -span[0], -span[1]))
        pending.remove(best)
        take(best)
    while (wanted & ~uploaded).any():
        worth, gain = priced(_state(chain, uploaded))
        chosen = _best(worth, gain, _within(wanted & ~uploaded))
        while recursive:
            inner = _within_span(len(costly), chosen) & (worth > 0)
            if not inner.any():
                break
            chosen = _best(worth, gain, inner)
        take(chosen)
    return UploadPlan(name, tuple(partitions))


def efficiency_of(state: State, first: int, last: int) -> float:
    """What costly units ``first`` to ``last`` (chain positions) on the server gain a query, per
    millisecond of their upload."""
    costly = state.chain.costly
    return float(_Pricer(state.chain)(state)[0][costly.index(first), costly.index(last) + 1])


def _state(chain: UploadChain, uploaded: np.ndarray) -> State:
    mask = [False] * len(chain)
    for unit in np.asarray(chain.costly)[uploaded]:
        mask[unit] = True
    return chain.state(mask)


class _Pricer:
    """What pricing a range needs that no upload changes, worked out once per plan."""

    def __init__(self, chain: UploadChain):
        self.starts = np.asarray(chain.costly)
        self.ends = np.concatenate(([self.starts[0]], self.starts + 1))
        self.transfer_in = np.asarray(chain.transfer_ms)[self.starts]
        server = np.asarray(chain.server_prefix)
        self.server_before, self.server_to = server[self.starts], server[self.ends]
        upload = np.asarray(chain.upload_prefix)
        self.cost = upload[self.ends][None, :] - upload[self.starts][:, None]

    def __call__(self, state: State) -> tuple[np.ndarray, np.ndarray]:
        """``worth[i, j]`` and ``gain[i, j]`` of costly units ``i..j-1`` (and the free units between
        them) on the server, as a matrix over ``i`` and ``j``; column 0 means nothing."""
        way_in = np.minimum(
            np.asarray(state.ahead_client)[self.starts] + self.transfer_in, np.asarray(state.ahead_server)[self.starts]
        )
        after = np.asarray(state.behind_server)[self.ends]
        gain = state.latency_ms - (way_in - self.server_before)[:, None] - (self.server_to + after)[None, :]
        worth = np.divide(gain, self.cost, out=np.full_like(gain, -np.inf), where=self.cost > 0)
        return worth, gain


def _best(worth: np.ndarray, gain: np.ndarray, allowed: np.ndarray) -> tuple[int, int]:
    """The allowed range of highest worth, then gain, then earliest start and end."""
    candidates = np.where(allowed, worth, -np.inf)
    tied = candidates == candidates.max()
    start, end = np.unravel_index(np.argmax(np.where(tied, gain, -np.inf)), gain.shape)
    return int(start), int(end)


def _within(free: np.ndarray) -> np.ndarray:
    """Ranges ``(s, e)`` that lie inside one run of ``free`` units."""
    n = len(free)
    positions = np.arange(n)
    run_end = np.minimum.accumulate(np.where(free, n, positions)[::-1])[::-1]
    ends = np.arange(n + 1)
    return free[:, None] & (ends[None, :] > positions[:, None]) & (ends[None, :] <= run_end[:, None])


def _within_span(n: int, span: tuple[int, int]) -> np.ndarray:
    """The ranges strictly inside ``span``."""
    first, end = span
    starts, ends = np.arange(n)[:, None], np.arange(n + 1)[None, :]
    allowed = (starts >= first) & (ends > starts) & (ends <= end)
    allowed[span] = False
    return allowed
