"""A run's link matrix refined by the sweep's own transfers.

Probes measure each link with one bulk transfer; a sweep then sends hundreds of real tensors over
the same links. No two hosts share a trusted clock, so one hop's transfer cannot be timed alone: the
edge times the whole round trip and the records split it into each worker's busy time and the rest,
the network time of all the inference's legs together. Each inference is therefore one linear
equation: over its legs, bytes times seconds per byte, plus each leg's one-way delay, equals the
transfer time measured. Pipelines that cross links in different mixes pin each link down; where
they cannot (a pipeline's links are always crossed together, with the same bytes each time), the
prior decides how the time splits: every such link is off its prior by the same factor, so a
pipeline measured 20% slower than planned has each of its links 20% slower, rather than its small
reply leg taking as many extra milliseconds as its large tensor. The prior, the matrix the run was
planned with, weighs as a small fraction of one inference on each link: enough to decide what the
transfers leave open, too little to pull a link they do pin down (a prior 5 times off moves such a
link by about 0.005% over 100 transfers). A link never crossed keeps its prior. Seconds per byte
stay non-negative (scipy's bounded least squares).

An average over the run: a link that changed mid-run gets a rate between its two.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import lsq_linear

from harness.links.matrix import LinkMatrix
from harness.results import ResultsFolder
from harness.results.summary import with_pipeline

PRIOR_WEIGHT = 1e-3
"""The prior on each link, as a fraction of one inference's weight."""
TIMED_SHARE = 0.05
"""A link whose messages take less than this share of their inferences' network time, as the prior
plans it (the median over the inferences that cross it), keeps its prior: a reply of a few
kilobytes among tensors of hundreds is within the noise of their times, so its rate would be a
guess (its time is still accounted for in the fit). Judged on the plan, not on the fit: a leg in
every inference with the same bytes each time is, to the fit, much like a fixed cost per inference,
and would otherwise take up whatever the machine's load added to every inference."""


@dataclass(frozen=True)
class Leg:
    """The bytes one message of an inference carried from ``src`` to ``dst``."""

    src: str
    dst: str
    nbytes: int


@dataclass(frozen=True)
class Crossing:
    """One inference's legs, in order, and the network time of all of them together."""

    legs: tuple[Leg, ...]
    seconds: float


def crossings(records: pd.DataFrame, hops: pd.DataFrame) -> list[Crossing]:
    """Every inference of ``records`` through a pipeline of workers (``hops.parquet`` holds its
    hops): the edge to the first worker, each worker to the next, the last back to the edge."""
    by_inference = {key: group.sort_values("hop") for key, group in hops.groupby(["run", "pipeline", "repeat"])}
    found = []
    for record in records.itertuples(index=False):
        hop_rows = by_inference.get((record.run, record.pipeline, record.repeat))
        if hop_rows is None or hop_rows.empty:
            continue
        source = str(record.pipeline).split(">")[0]
        hosts = [source, *hop_rows["host"]]
        sizes = [*hop_rows["bytes_wire"], record.reply_bytes_wire]
        legs = tuple(Leg(a, b, int(size)) for a, b, size in zip(hosts, [*hosts[1:], source], sizes, strict=True))
        found.append(Crossing(legs, record.transfer_ns / 1e9))
    return found


def refine(prior: LinkMatrix, inferences: Sequence[Crossing]) -> LinkMatrix:
    """``prior`` with the rate of every link the inferences crossed estimated from them (source
    ``transfer``, the count and typical size in the note); the others as they were."""
    links = sorted({(leg.src, leg.dst) for crossing in inferences for leg in crossing.legs})
    refined = LinkMatrix(prior.hosts, prior.rate.copy(), prior.rtt_s.copy(), dict(prior.source), dict(prior.note))
    if not links:
        return refined
    column = {link: index for index, link in enumerate(links)}
    delay = prior.delay_s()
    sizes: dict[tuple[str, str], list[int]] = {link: [] for link in links}
    shares: dict[tuple[str, str], list[float]] = {link: [] for link in links}
    rows, times = [], []
    for crossing in inferences:
        row = np.zeros(len(links))
        time_s = crossing.seconds
        planned = {}
        for leg in crossing.legs:
            link = (leg.src, leg.dst)
            row[column[link]] += leg.nbytes
            sizes[link].append(leg.nbytes)
            time_s -= _finite(delay[prior.index(leg.src), prior.index(leg.dst)])
            planned[link] = planned.get(link, 0.0) + _planned_s(prior, link, leg.nbytes)
        total = sum(planned.values())
        for link, seconds in planned.items():
            shares[link].append(seconds / total if math.isfinite(total) and total > 0 else 1.0)
        rows.append(row)
        times.append(time_s)
    scale = max(float(np.median(times)), 1e-6)
    typical = {link: float(np.median(sizes[link])) for link in links}
    for link, index in column.items():
        rate = prior.rate[prior.index(link[0]), prior.index(link[1])]
        if typical[link] > 0 and math.isfinite(rate) and rate > 0:
            weight = math.sqrt(PRIOR_WEIGHT * scale * rate / typical[link])
            row = np.zeros(len(links))
            row[index] = typical[link] * weight
            rows.append(row)
            times.append(typical[link] / rate * weight)
    solved = lsq_linear(np.array(rows), np.array(times), bounds=(0, np.inf))
    for link, seconds_per_byte in zip(links, solved.x, strict=True):
        if seconds_per_byte <= 0 or float(np.median(shares[link])) < TIMED_SHARE:
            continue
        i, j = refined.index(link[0]), refined.index(link[1])
        note = f"{len(sizes[link])} transfers, median {int(typical[link])} B, over {_was(prior, link)}"
        refined.record(link[0], link[1], 1 / seconds_per_byte, refined.rtt_s[i, j], "transfer", note)
    return refined


def _planned_s(prior: LinkMatrix, link: tuple[str, str], nbytes: int) -> float:
    """What ``nbytes`` take on ``link`` as the prior has it (infinite over a gap)."""
    rate = prior.rate[prior.index(link[0]), prior.index(link[1])]
    return nbytes / rate if math.isfinite(rate) and rate > 0 else math.inf


def _was(prior: LinkMatrix, link: tuple[str, str]) -> str:
    rate = prior.rate[prior.index(link[0]), prior.index(link[1])]
    return f"{prior.source.get(link, 'gap')} {rate:.6g} B/s" if math.isfinite(rate) else "a gap"


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def write_links_after(folder: ResultsFolder, links: dict[str, tuple[float, float]]) -> list[Path]:
    """For each run of ``links`` (its declared rate and one-way delay), ``links_<run>.parquet``: the
    declared link between every two hosts its inferences went through, refined by their transfers."""
    if not folder.hops.is_file():
        return []
    records, hops = with_pipeline(pd.read_parquet(folder.records_parquet)), pd.read_parquet(folder.hops)
    written = []
    for run, group in records.groupby("run"):
        run_hops = hops[hops["run"] == run]
        if run not in links or run_hops.empty:
            continue
        rate, delay_s = links[run]
        prior = LinkMatrix.declared(_hosts_of(group["pipeline"]), rate, delay_s)
        refined = refine(prior, crossings(group, run_hops))
        written.append(refined.write(folder.links_after(str(run))))
    return written


def _hosts_of(pipelines: Iterable[str]) -> list[str]:
    """Every host the pipelines (``rpi1>3>jetson1>13>gpu1``) name, in the order they first appear."""
    return list(dict.fromkeys(part for label in pipelines for part in str(label).split(">")[::2]))
