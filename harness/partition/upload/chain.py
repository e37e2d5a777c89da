"""The model as an upload planner sees it: a chain of units, each runnable on the client or, once
its parameters have arrived, on the server, and what a query costs for a given set of uploaded units.

A query starts and ends on the client. Moving the data between client and server at boundary
``k`` (0: the input into the first unit, ``n``: the output of the last) costs the bytes live there
over the link's rate plus its one-way delay, in either direction; two consecutive units on the
server pass their data for free. This is IONN's execution graph (three nodes a layer) as a dynamic
program over the two places the data can be, which prices a whole candidate range in O(1) once the
prefix and suffix costs of the current state are known: the efficiency planners price every range of
every step that way, instead of a shortest-path search per candidate.

Ties go to the client: a unit moves to the server only when that is strictly faster, so a plan never
uploads a unit that buys nothing, and the same inputs always give the same plan.

A unit whose upload costs nothing (no parameters, no build time: an activation, a pooling) is on the
server from the start: the worker holds the architecture, so it can run such a unit before any weight
arrives. Plans carry only the units that cost an upload (``costly``); a range of them covers the free
units between its ends.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

CLIENT, SERVER = 0, 1


@dataclass(frozen=True)
class Unit:
    """Layers ``first`` to ``last`` (split-graph positions, 0-based, inclusive) between two cuts,
    with their time on each host, the parameters an upload carries for them (``params``, their
    ``param_bytes``), and the server's time to build them."""

    name: str
    client_ms: float
    server_ms: float
    param_bytes: int
    build_ms: float = 0.0
    first: int = 0
    last: int = 0
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class UploadChain:
    """``boundary_bytes[k]``: bytes that cross boundary ``k`` (``n + 1`` of them for ``n`` units);
    ``rate``: link bytes per millisecond, the same both ways; ``delay_ms``: one-way delay."""

    model: str
    units: tuple[Unit, ...]
    boundary_bytes: tuple[int, ...]
    rate: float
    delay_ms: float = 0.0

    def __post_init__(self):
        if len(self.boundary_bytes) != len(self.units) + 1:
            raise ValueError(f"{len(self.units)} units need {len(self.units) + 1} boundaries")

    def __len__(self) -> int:
        return len(self.units)

    @cached_property
    def transfer_ms(self) -> tuple[float, ...]:
        return tuple(size / self.rate + self.delay_ms for size in self.boundary_bytes)

    @cached_property
    def upload_ms(self) -> tuple[float, ...]:
        """Each unit's upload: its parameters over the link, then the server building it."""
        return tuple(unit.param_bytes / self.rate + unit.build_ms for unit in self.units)

    @cached_property
    def free(self) -> tuple[bool, ...]:
        return tuple(cost == 0 for cost in self.upload_ms)

    @cached_property
    def costly(self) -> tuple[int, ...]:
        """The units an upload must carry, in chain order."""
        return tuple(index for index, free in enumerate(self.free) if not free)

    @cached_property
    def upload_prefix(self) -> tuple[float, ...]:
        return _prefix(self.upload_ms)

    @cached_property
    def server_prefix(self) -> tuple[float, ...]:
        return _prefix(unit.server_ms for unit in self.units)

    @cached_property
    def client_ms(self) -> tuple[float, ...]:
        return tuple(unit.client_ms for unit in self.units)

    @cached_property
    def server_ms(self) -> tuple[float, ...]:
        return tuple(unit.server_ms for unit in self.units)

    def local_ms(self) -> float:
        return sum(self.client_ms)

    def latency_ms(self, uploaded: Sequence[bool]) -> float:
        return self.state(uploaded).latency_ms

    def best(self, server_extra: Sequence[float] | None = None, uploaded: Sequence[bool] | None = None):
        """The fastest placement of a query: (latency, the costly units it runs on the server).
        Units not in ``uploaded`` pay ``server_extra`` on the server (IONN's penalised upload time);
        with ``uploaded`` None every unit may run there at its plain cost."""
        state = State(self, [True] * len(self) if uploaded is None else list(uploaded), server_extra)
        return state.latency_ms, tuple(index for index in state.server_units() if not self.free[index])

    def state(self, uploaded: Sequence[bool]) -> "State":
        return State(self, list(uploaded))

    def optimal_units(self) -> tuple[int, ...]:
        """The costly units the fastest query runs on the server when everything may run there."""
        return self.best()[1]


class State:
    """Prefix and suffix costs of a query for one set of uploaded units.

    ``ahead_client[k]`` / ``ahead_server[k]``: the least time to run units ``0..k-1`` with the data
    ending on the client / the server; ``behind_client[k]`` / ``behind_server[k]``: the least time
    from the data there before boundary ``k`` to the answer on the client. A range forced onto the
    server costs the way in, its server time and ``behind_server`` after it."""

    def __init__(self, chain: UploadChain, uploaded: list[bool], server_extra: Sequence[float] | None = None):
        self.chain = chain
        self.uploaded = [up or free for up, free in zip(uploaded, chain.free, strict=True)]
        inf = math.inf
        if server_extra is None:
            self._server = chain.server_ms
            self._allowed = self.uploaded
        else:
            self._server = [
                server if up else server + extra
                for server, up, extra in zip(chain.server_ms, self.uploaded, server_extra, strict=True)
            ]
            self._allowed = [True] * len(chain)
        steps = list(zip(chain.transfer_ms, chain.client_ms, self._server, self._allowed, strict=False))
        on_client, on_server = 0.0, inf
        self.ahead_client, self.ahead_server = [on_client], [on_server]
        for move, client_ms, server_ms, allowed in steps:
            stay = on_server + move
            enter = on_client + move
            on_client = (on_client if on_client < stay else stay) + client_ms
            on_server = ((enter if enter < on_server else on_server) + server_ms) if allowed else inf
            self.ahead_client.append(on_client)
            self.ahead_server.append(on_server)
        then_client, then_server = 0.0, chain.transfer_ms[-1]
        self.behind_client, self.behind_server = [then_client], [then_server]
        for move, client_ms, server_ms, allowed in reversed(steps):
            client = client_ms + then_client
            remote = server_ms + then_server if allowed else inf
            then_client = client if client < move + remote else move + remote
            then_server = remote if remote < move + client else move + client
            self.behind_client.append(then_client)
            self.behind_server.append(then_server)
        self.behind_client.reverse()
        self.behind_server.reverse()
        self.latency_ms = then_client

    def forced_ms(self, first: int, end: int) -> float:
        """A query's least time with units ``first..end-1`` on the server (at their plain cost)."""
        way_in = min(self.ahead_client[first] + self.chain.transfer_ms[first], self.ahead_server[first])
        prefix = self.chain.server_prefix
        return way_in + prefix[end] - prefix[first] + self.behind_server[end]

    def server_units(self) -> tuple[int, ...]:
        """The units the fastest query runs on the server, read back from the suffix costs (client
        first on a tie)."""
        transfer, client_ms = self.chain.transfer_ms, self.chain.client_ms
        place, chosen = CLIENT, []
        for index in range(len(client_ms)):
            client = (transfer[index] if place == SERVER else 0.0) + client_ms[index] + self.behind_client[index + 1]
            remote = math.inf
            if self._allowed[index]:
                remote = (transfer[index] if place == CLIENT else 0.0) + self._server[index]
                remote += self.behind_server[index + 1]
            place = SERVER if remote < client else CLIENT
            if place == SERVER:
                chosen.append(index)
        return tuple(chosen)


def runs(indices) -> list[tuple[int, int]]:
    """Maximal runs of consecutive unit indices, as ``(start, end)`` with ``end`` excluded."""
    found: list[tuple[int, int]] = []
    for index in indices:
        if found and found[-1][1] == index:
            found[-1] = (found[-1][0], index + 1)
        else:
            found.append((index, index + 1))
    return found


def _prefix(values) -> tuple[float, ...]:
    total, sums = 0.0, [0.0]
    for value in values:
        total += value
        sums.append(total)
    return tuple(sums)
