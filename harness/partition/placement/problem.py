"""A placement instance and its cost model: a chain of model segments, hosts in tiers, the link
matrix between them, and what a placement of the segments on the hosts costs.

The rules a placement must keep, and why:

- Each host runs one contiguous block of segments, and consecutive blocks sit on hosts of strictly
  increasing tier. Data flows device -> edge -> cloud and never back, so a pipeline has at most one
  stage per tier, and no host is visited twice (the A,B,B,A placements that addnn's integer program
  admits cannot be deployed as one range per host). Hosts of one tier are alternatives (which Pi,
  which GPU), not stages of their own.
- A block's parameter bytes fit the host's memory.
- The input starts on the ``source`` host (the device that took the picture) and the result goes
  back to it, so moving the input off the source and the reply home are paid like any other hop.

A hop costs the link's one-way delay plus the bytes live at the cut over its rate; a pair with no
measured link (rate 0 or NaN) cannot carry a hop. ``latency`` sums compute and hops; ``throughput``
is the slowest stage (a block's compute or one hop), the period of a full pipeline.

Pricing works on many placements at once (rows of host indices), because the genetic strategy and
exhaustive enumeration price whole populations, and a per-row Python loop would dominate them.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from harness.errors import BadInput

OBJECTIVES = ("latency", "throughput")


def require_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise BadInput(f"objective '{objective}': expected one of {', '.join(OBJECTIVES)}")
    return objective


@dataclass(frozen=True)
class Problem:
    """``compute_s[h, j]``: seconds of segment ``j`` on host ``h``; ``segment_bytes[j]``: its
    parameter bytes; ``cut_bytes[i]``: bytes live at cut ``i`` (0 is the input, the last the output);
    ``rate[g, h]``: bytes per second from ``g`` to ``h``; ``delay_s[g, h]``: one-way seconds."""

    host_names: tuple[str, ...]
    tiers: np.ndarray
    memory_bytes: np.ndarray
    compute_s: np.ndarray
    segment_bytes: np.ndarray
    cut_bytes: np.ndarray
    rate: np.ndarray
    delay_s: np.ndarray
    source: int = 0

    def __post_init__(self):
        hosts, segments = self.compute_s.shape
        shapes = {
            "tiers": (self.tiers.shape, (hosts,)),
            "memory_bytes": (self.memory_bytes.shape, (hosts,)),
            "segment_bytes": (self.segment_bytes.shape, (segments,)),
            "cut_bytes": (self.cut_bytes.shape, (segments + 1,)),
            "rate": (self.rate.shape, (hosts, hosts)),
            "delay_s": (self.delay_s.shape, (hosts, hosts)),
        }
        for field, (found, expected) in shapes.items():
            if found != expected:
                raise BadInput(f"placement problem: {field} has shape {found}; expected {expected}")
        if len(self.host_names) != hosts or segments == 0:
            raise BadInput(
                f"placement problem: {len(self.host_names)} host names for {hosts} hosts and {segments} segments; "
                "expected a name per host and at least one segment"
            )
        if not 0 <= self.source < hosts:
            raise BadInput(f"placement problem: source {self.source}; expected a host index below {hosts}")
        if np.any(self.compute_s < 0) or np.any(self.delay_s < 0) or np.any(np.nan_to_num(self.rate) < 0):
            raise BadInput("placement problem: compute, delay and rate must not be negative")

    @property
    def hosts(self) -> int:
        return self.compute_s.shape[0]

    @property
    def segments(self) -> int:
        return self.compute_s.shape[1]

    @cached_property
    def compute_prefix(self) -> np.ndarray:
        """``[h, j]``: seconds of segments ``0..j-1`` on ``h``; a block's compute is a difference."""
        return np.concatenate((np.zeros((self.hosts, 1)), np.cumsum(self.compute_s, axis=1)), axis=1)

    @cached_property
    def memory_prefix(self) -> np.ndarray:
        return np.concatenate(([0.0], np.cumsum(self.segment_bytes, dtype=float)))

    def hop_s(self, cut: int) -> np.ndarray:
        """``[g, h]``: seconds to move cut ``cut``'s tensors from ``g`` to ``h``; 0 on the diagonal,
        infinite where no link was measured."""
        seconds = _seconds_to_move(self.cut_bytes[cut], self.rate, self.delay_s)
        np.fill_diagonal(seconds, 0.0)
        return seconds

    @cached_property
    def climbs(self) -> np.ndarray:
        """``[g, h]``: a hop from ``g`` to ``h`` goes up a tier."""
        return self.tiers[:, None] < self.tiers[None, :]

    def check(self, placement, label: str | None = None) -> None:
        """Raise BadInput naming the first rule ``placement`` (one host index per segment) breaks;
        ``label`` names it in the message (default: its hosts)."""
        hosts = [int(host) for host in placement]
        if len(hosts) != self.segments:
            raise BadInput(f"placement {hosts}: {len(hosts)} hosts for {self.segments} segments")
        for host in hosts:
            if not 0 <= host < self.hosts:
                raise BadInput(f"placement {hosts}: host {host} does not exist; expected 0..{self.hosts - 1}")
        name = label or f"placement {self.named(hosts)}"
        start = 0
        for end in range(1, self.segments + 1):
            if end < self.segments and hosts[end] == hosts[start]:
                continue
            block = hosts[start]
            needed = self.memory_prefix[end] - self.memory_prefix[start]
            if needed > self.memory_bytes[block]:
                raise BadInput(
                    f"{name}: segments {start + 1}..{end} need {needed:.0f} B on "
                    f"{self.host_names[block]}, which has {self.memory_bytes[block]:.0f} B"
                )
            if end < self.segments:
                following = hosts[end]
                if self.tiers[following] <= self.tiers[block]:
                    raise BadInput(
                        f"{name}: segment {end + 1} goes from {self.host_names[block]} "
                        f"(tier {self.tiers[block]}) to {self.host_names[following]} (tier {self.tiers[following]}); "
                        "expected a higher tier at each hop"
                    )
                if not np.isfinite(self._one_hop(end, block, following)):
                    raise BadInput(
                        f"{name}: no link measured from {self.host_names[block]} to {self.host_names[following]}"
                    )
            start = end
        ends = ((self.source, hosts[0], 0, "input"), (hosts[-1], self.source, self.segments, "reply"))
        for frm, to, cut, what in ends:
            if not np.isfinite(self._one_hop(cut, frm, to)):
                raise BadInput(
                    f"{name}: no link measured for the {what} from {self.host_names[frm]} to {self.host_names[to]}"
                )

    def named(self, placement) -> str:
        return ",".join(self.host_names[int(host)] for host in placement)

    def price(self, placements: np.ndarray, objective: str = "latency") -> np.ndarray:
        """Seconds of each row of ``placements`` under ``objective``; infinite where a row breaks a rule."""
        require_objective(objective)
        rows = np.atleast_2d(np.asarray(placements, dtype=np.int64))
        compute = self.compute_s[rows, np.arange(self.segments)]
        hops = self._hops(rows)
        feasible = self._feasible(rows) & np.all(np.isfinite(hops), axis=1)
        if objective == "latency":
            value = compute.sum(axis=1) + hops.sum(axis=1)
        else:
            value = np.maximum(self._block_compute(rows).max(axis=1), hops.max(axis=1))
        return np.where(feasible, value, np.inf)

    def stages(self, placement) -> list["Stage"]:
        """The placement's stages in order: the input's hop (when it leaves the source), each block's
        compute, each hop between blocks, and the reply (when it has to travel)."""
        hosts = [int(host) for host in placement]
        found = [self._hop_stage(0, self.source, hosts[0])] if hosts[0] != self.source else []
        start = 0
        for end in range(1, self.segments + 1):
            if end < self.segments and hosts[end] == hosts[start]:
                continue
            host, name = hosts[start], self.host_names[hosts[start]]
            seconds = float(self.compute_prefix[host, end] - self.compute_prefix[host, start])
            found.append(Stage("compute", name, name, start, end, seconds))
            if end < self.segments:
                found.append(self._hop_stage(end, host, hosts[end]))
            start = end
        if hosts[-1] != self.source:
            found.append(self._hop_stage(self.segments, hosts[-1], self.source))
        return found

    def _hop_stage(self, cut: int, frm: int, to: int) -> "Stage":
        return Stage("hop", self.host_names[frm], self.host_names[to], cut, cut, self._one_hop(cut, frm, to))

    def _one_hop(self, cut: int, frm: int, to: int) -> float:
        """One pair's ``hop_s``, without building the whole matrix."""
        if frm == to:
            return 0.0
        return float(_seconds_to_move(self.cut_bytes[cut], self.rate[frm, to], self.delay_s[frm, to]))

    def _hops(self, rows: np.ndarray) -> np.ndarray:
        """``[row, k]``: seconds of hop ``k``: the input's, one per inner cut, then the reply's."""
        source = np.full((rows.shape[0], 1), self.source)
        frm = np.concatenate((source, rows), axis=1)
        to = np.concatenate((rows, source), axis=1)
        seconds = _seconds_to_move(self.cut_bytes[None, :], self.rate[frm, to], self.delay_s[frm, to])
        return np.where(frm == to, 0.0, seconds)

    def _block_compute(self, rows: np.ndarray) -> np.ndarray:
        """``[row, h]``: seconds host ``h`` computes in each row."""
        totals = np.zeros((rows.shape[0], self.hosts))
        np.add.at(totals, (np.arange(rows.shape[0])[:, None], rows), self.compute_s[rows, np.arange(self.segments)])
        return totals

    def _feasible(self, rows: np.ndarray) -> np.ndarray:
        moves = rows[:, 1:] != rows[:, :-1]
        climbs = self.tiers[rows[:, 1:]] > self.tiers[rows[:, :-1]]
        ordered = np.all(~moves | climbs, axis=1)
        memory = np.zeros((rows.shape[0], self.hosts))
        np.add.at(memory, (np.arange(rows.shape[0])[:, None], rows), self.segment_bytes[None, :].astype(float))
        fits = np.all(memory <= self.memory_bytes[None, :], axis=1)
        return ordered & fits


def _seconds_to_move(nbytes, rate, delay_s):
    """The one hop formula: delay plus bytes over rate, infinite where the rate is 0 or NaN (a gap)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        seconds = np.asarray(delay_s + nbytes / rate, dtype=float)
    return np.where(np.isfinite(seconds) & (np.nan_to_num(rate) > 0), seconds, np.inf)


@dataclass(frozen=True)
class Stage:
    """One step of a placement: ``compute`` of segments ``first..last-1`` on a host, or a ``hop``
    of the tensors live at cut ``first`` from one host to the next."""

    kind: str
    frm: str
    to: str
    first: int
    last: int
    seconds: float
