"""The link matrix: throughput and round-trip time for every ordered pair of hosts, with the pairs
that could not be measured kept as explicit gaps (a reason each) instead of a crash or a guess.

On disk it is one row per ordered pair in Parquet (``links.parquet``), so a catalog view or pandas
reads it as it is. A sweep over tiers refines the rates of the links its inferences crossed from
their real transfers (``harness.links.observed``).
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import BadInput

COLUMNS = {
    "src": "string",
    "dst": "string",
    "rate_bytes_per_s": "float64",
    "rtt_s": "float64",
    "source": "string",
    "note": "string",
}
SOURCES = ("probe", "transfer", "gap", "declared")


@dataclass
class LinkMatrix:
    """``rate[i, j]`` bytes per second from ``hosts[i]`` to ``hosts[j]``; ``rtt_s[i, j]`` the round
    trip measured from ``i``; NaN where the pair is a gap. ``source`` and ``note`` say, per pair, where
    the figure came from and why a gap is one."""

    hosts: tuple[str, ...]
    rate: np.ndarray
    rtt_s: np.ndarray
    source: dict[tuple[str, str], str] = field(default_factory=dict)
    note: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def empty(cls, hosts) -> "LinkMatrix":
        hosts = tuple(hosts)
        shape = (len(hosts), len(hosts))
        gaps = {(a, b): "gap" for a in hosts for b in hosts if a != b}
        notes = {pair: "not measured" for pair in gaps}
        return cls(hosts, np.full(shape, np.nan), np.full(shape, np.nan), gaps, notes)

    @classmethod
    def declared(cls, hosts, rate: float, delay_s: float) -> "LinkMatrix":
        """The manifest's one link for every ordered pair of different hosts."""
        matrix = cls.empty(hosts)
        for src, dst in matrix.pairs():
            matrix.record(src, dst, rate, 2 * delay_s, "declared", "the manifest's link")
        return matrix

    def index(self, host: str) -> int:
        try:
            return self.hosts.index(host)
        except ValueError:
            raise BadInput(f"link matrix: no host '{host}'; it has {', '.join(self.hosts)}") from None

    def record(self, src: str, dst: str, rate: float, rtt_s: float, source: str = "probe", note: str = "") -> None:
        i, j = self.index(src), self.index(dst)
        self.rate[i, j], self.rtt_s[i, j] = rate, rtt_s
        self.source[(src, dst)], self.note[(src, dst)] = source, note

    def mark_gap(self, src: str, dst: str, reason: str) -> None:
        self.record(src, dst, math.nan, math.nan, "gap", reason)

    def gaps(self) -> list[tuple[str, str, str]]:
        return [
            (a, b, self.note.get((a, b), ""))
            for a, b in self.pairs()
            if np.isnan(self.rate[self.index(a), self.index(b)])
        ]

    def pairs(self) -> list[tuple[str, str]]:
        return [(a, b) for a in self.hosts for b in self.hosts if a != b]

    def delay_s(self) -> np.ndarray:
        """One-way delay as half the round trip (no cross-host clock is trusted); 0 on the diagonal."""
        delay = self.rtt_s / 2
        np.fill_diagonal(delay, 0.0)
        return delay

    def ordered(self, hosts) -> tuple[np.ndarray, np.ndarray]:
        """Rates (0 where a gap) and one-way delays of ``hosts`` in that order, for a placement problem."""
        order = [self.index(host) for host in hosts]
        rate = np.nan_to_num(self.rate[np.ix_(order, order)], nan=0.0)
        return rate, np.nan_to_num(self.delay_s()[np.ix_(order, order)], nan=0.0)

    def frame(self) -> pd.DataFrame:
        rows = []
        for a, b in self.pairs():
            i, j = self.index(a), self.index(b)
            rows.append(
                (a, b, self.rate[i, j], self.rtt_s[i, j], self.source.get((a, b), "gap"), self.note.get((a, b), ""))
            )
        return pd.DataFrame(rows, columns=list(COLUMNS)).astype(COLUMNS)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.frame().to_parquet(path, index=False)
        return path


def read_matrix(path: Path) -> LinkMatrix:
    """A link matrix from ``path`` (Parquet as ``LinkMatrix.write`` makes it), checked column by column."""
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise BadInput(
            f"{path}: cannot read a link matrix ({error}); expected Parquet from 'harness links measure'"
        ) from error
    missing = [column for column in COLUMNS if column not in table.columns]
    if missing:
        raise BadInput(f"{path}: no column {', '.join(missing)}; expected columns {', '.join(COLUMNS)}")
    unknown = sorted(set(table["source"]) - set(SOURCES))
    if unknown:
        raise BadInput(f"{path}: column source has {', '.join(unknown)}; expected one of {', '.join(SOURCES)}")
    if (table["src"] == table["dst"]).any() or table.duplicated(["src", "dst"]).any():
        raise BadInput(f"{path}: columns src, dst: expected each ordered pair of distinct hosts at most once")
    negative = table[(table["rate_bytes_per_s"] <= 0) | (table["rtt_s"] < 0)]
    if not negative.empty:
        first = negative.iloc[0]
        raise BadInput(
            f"{path}: pair {first['src']} -> {first['dst']}: rate {first['rate_bytes_per_s']} B/s, rtt "
            f"{first['rtt_s']} s; expected a positive rate and a round trip of at least 0 (NaN for a gap)"
        )
    hosts = tuple(dict.fromkeys([*table["src"], *table["dst"]]))
    matrix = LinkMatrix.empty(hosts)
    for row in table.itertuples(index=False):
        matrix.record(row.src, row.dst, row.rate_bytes_per_s, row.rtt_s, row.source, row.note or "")
    return matrix
