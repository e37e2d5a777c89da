"""Re-planning during a run over tiers, on the edge: measure the links again, solve again, switch
pipelines between two inferences without dropping one.

It runs beside the edge driver, on the first host of the first tier, because only the edge holds
the pipeline's connections and knows when no request is in flight: every ``every_s`` seconds,
between two inferences, it has each host's worker probe the others (in rounds of disjoint pairs),
prices the problem the controller built on the fresh matrix and lets the placement strategy solve
it; ``harness.partition.placement.adapt`` decides whether to switch. A switch is make-before-break:
every worker of the new pipeline builds its segment and connects its next hop beside the old ones
(each acknowledges), one unrecorded inference warms the new pipeline, and only then does the next
recorded inference take it. Link events of an emulated link change the pace of their pairs at
their time, which the senders then hold their messages for, probes included.
"""

import dataclasses
import itertools
import json
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from harness.links.measure import ProbeSettings, measure_links
from harness.partition.placement import place
from harness.partition.placement.adapt import AdaptPolicy, Replanner
from harness.partition.placement.instance import LabInstance, TierHost
from harness.partition.placement.problem import Problem
from harness.sweep.pipelines import Pipeline
from harness.wire.frames import Pace
from harness.wire.keys import ClientKeys
from harness.worker.edge import EdgeDriver, LinkSettings


class _Plain(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanHost(_Plain):
    name: str
    group: str
    tier: int
    speed: float
    memory_bytes: float | None
    """None: unlimited (JSON has no infinity)."""


class PlanLinkEvent(_Plain):
    at_s: float
    pairs: list[tuple[str, str]]
    rate: float | None
    """Bytes per second; None: unlimited."""


class PlanAdapt(_Plain):
    """What the edge needs to re-plan a run: the policy, the strategy, the problem the controller
    built (each host's seconds per segment, parameter and cut bytes), every host's worker for the
    probes, and the run's link events."""

    every_s: float
    min_gain: float
    rounds: int
    probe_bytes: int
    strategy: str
    objective: str
    options: dict[str, bool | int | float | str]
    hosts: list[PlanHost]
    cuts: list[int]
    compute_s: list[list[float]]
    segment_bytes: list[float]
    cut_bytes: list[float]
    workers: dict[str, str]
    events: list[PlanLinkEvent]

    def instance(self) -> LabInstance:
        hosts = [
            TierHost(
                host.name,
                host.group,
                host.tier,
                host.speed,
                math.inf if host.memory_bytes is None else host.memory_bytes,
            )
            for host in self.hosts
        ]
        count = len(hosts)
        problem = Problem(
            host_names=tuple(host.name for host in hosts),
            tiers=np.array([host.tier for host in hosts]),
            memory_bytes=np.array([host.memory_bytes for host in hosts]),
            compute_s=np.array(self.compute_s, dtype=float),
            segment_bytes=np.array(self.segment_bytes, dtype=float),
            cut_bytes=np.array(self.cut_bytes, dtype=float),
            rate=np.zeros((count, count)),
            delay_s=np.zeros((count, count)),
        )
        return LabInstance(problem, tuple(hosts), tuple(self.cuts), "measured during the run")


class AdaptivePipeline:
    """One run's re-planned pipeline behind the driver interface ``sweep`` uses: a single unit, whose
    pipeline changes when the replanner says so; each record and hop names the pipeline it took."""

    def __init__(
        self,
        adapt: PlanAdapt,
        start: Pipeline,
        driver_for: Callable[[list[str]], EdgeDriver],
        keys: ClientKeys | None,
        report: Callable[[dict], None],
        link: LinkSettings,
    ):
        self.adapt = adapt
        emulated = link.emulated
        self.emulated = Pace(None if math.isinf(link.rate) else link.rate, link.delay_ns) if emulated else None
        """The run's emulated link as senders pace it; None where the network itself is the link."""
        self.driver_for = driver_for
        self.keys = keys
        self.report = report
        self.instance = adapt.instance()
        names = [host.name for host in adapt.hosts]
        self.paces = {(a, b): self.emulated for a in names for b in names if a != b}
        self.events = sorted(adapt.events, key=lambda event: event.at_s)
        running = self.instance.placement_of(list(start.cuts), list(start.workers))
        self.replanner = Replanner(AdaptPolicy(adapt.min_gain, adapt.rounds), running, adapt.objective)
        self._drivers: dict[tuple[str, ...], EdgeDriver] = {}
        self.pipeline = start
        self.driver = self._driver(start)
        self.run = self.driver.run
        self.split = self.driver.split
        self.started: float | None = None
        self.measured_at = 0.0
        self._warm_input: torch.Tensor | None = None

    def unit(self, label: str) -> int:
        return 0

    def describe(self, unit: int) -> tuple[int, str]:
        first, _ = self.driver.describe(self.pipeline.cuts)
        return first, self.pipeline.label

    def prepare(self, unit: int) -> None:
        self.driver.prepare(self.pipeline.cuts)

    def await_worker(self, wait_s: float, after: Exception) -> None:
        self.driver.await_worker(wait_s, after)

    def run_pipeline(self, unit: int, inputs: torch.Tensor, repeat: int = 0, input_index: int = 0):
        self._warm_input = inputs
        self._tick()
        pipeline = self.pipeline
        output, record, hops = self.driver.run_pipeline(pipeline.cuts, inputs, repeat, input_index)
        named = [
            dataclasses.replace(hop, host=host, pipeline=pipeline.label, repeat=repeat)
            for hop, host in zip(hops, pipeline.workers, strict=True)
        ]
        return output, dataclasses.replace(record, pipeline=pipeline.label), named

    def _tick(self) -> None:
        """Before an inference: apply the link events that are due, and re-plan once an interval is up."""
        now = time.monotonic()
        if self.started is None:
            self.started = self.measured_at = now
        while self.events and self.events[0].at_s <= now - self.started:
            event = self.events.pop(0)
            pace = None if self.emulated is None else Pace(event.rate, self.emulated.delay_ns)
            for pair in event.pairs:
                self.paces[tuple(pair)] = pace
            self._repace(self.driver, self.pipeline)
            rate = "unlimited" if event.rate is None else f"{event.rate:g} B/s"
            pairs = ", ".join(f"{a}->{b}" for a, b in event.pairs)
            self.report(self._row(now, "link event", reason=f"{pairs} at {rate}"))
        if now - self.measured_at >= self.adapt.every_s:
            self._replan(now)
            self.measured_at = time.monotonic()

    def _replan(self, now: float) -> None:
        settings = ProbeSettings(echoes=3, bulk_bytes=self.adapt.probe_bytes, timeout_s=5.0, ping_s=3.0)
        measured = measure_links(self.adapt.workers, self.keys, settings, paces=self.paces)
        rate, delay = measured.matrix.ordered(list(self.instance.problem.host_names))
        problem = dataclasses.replace(self.instance.problem, rate=rate, delay_s=delay)
        found = place(self.adapt.strategy, problem, self.adapt.objective, **self.adapt.options)
        verdict = self.replanner.consider(problem, found)
        running = self.pipeline.label
        best = self._pipeline(verdict.best).label if verdict.best is not None else ""
        switch_ms = 0.0
        if verdict.switch:
            started = time.monotonic()
            self._switch(self._pipeline(verdict.best))
            switch_ms = (time.monotonic() - started) * 1e3
        links = {f"{a}->{b}": rate for (a, b), rate in _rates(measured.matrix).items()}
        self.report(
            self._row(
                now,
                "interval",
                running=running,
                running_ms=_ms(verdict.running_s),
                best=best,
                best_ms=_ms(verdict.best_s),
                gain=verdict.gain if math.isfinite(verdict.gain) else None,
                streak=verdict.streak,
                switched=verdict.switch,
                reason=verdict.reason,
                measure_ms=measured.seconds * 1e3,
                switch_ms=switch_ms,
                links=json.dumps(links, sort_keys=True),
            )
        )

    def _switch(self, pipeline: Pipeline) -> None:
        """Make before break: the new pipeline's workers build and connect, one unrecorded inference
        runs through it, and only then is it the one recorded inferences take."""
        driver = self._driver(pipeline)
        driver.prepare(pipeline.cuts)
        if self._warm_input is not None:
            driver.run_pipeline(pipeline.cuts, self._warm_input)
        self.driver, self.pipeline = driver, pipeline

    def _driver(self, pipeline: Pipeline) -> EdgeDriver:
        """The driver of ``pipeline``'s chain of workers, made once: the old chain's stays prepared."""
        chain = tuple(pipeline.workers)
        if chain not in self._drivers:
            self._drivers[chain] = self.driver_for(list(chain))
        driver = self._drivers[chain]
        self._repace(driver, pipeline)
        return driver

    def _repace(self, driver: EdgeDriver, pipeline: Pipeline) -> None:
        if self.emulated is None:
            return
        hosts = [pipeline.source, *pipeline.workers]
        into = [self.paces[(a, b)] for a, b in itertools.pairwise(hosts)]
        reply = self.paces[(hosts[-1], pipeline.source)] if pipeline.workers else self.emulated
        driver.repace([*into, reply])

    def _pipeline(self, placement: tuple[int, ...]) -> Pipeline:
        cuts, workers = self.instance.pipeline(placement)
        return Pipeline(self.pipeline.source, cuts, workers)

    def _row(self, now: float, trigger: str, **fields) -> dict:
        row = {
            "run": self.run,
            "at_s": now - (self.started or now),
            "at_ns": time.time_ns() - round((time.monotonic() - now) * 1e9),
            "trigger": trigger,
            "running": self.pipeline.label,
            "running_ms": None,
            "best": "",
            "best_ms": None,
            "gain": None,
            "streak": 0,
            "switched": False,
            "reason": "",
            "measure_ms": 0.0,
            "switch_ms": 0.0,
            "links": "",
        }
        return row | fields


def _ms(seconds: float) -> float | None:
    return seconds * 1e3 if math.isfinite(seconds) else None


def _rates(matrix) -> dict[tuple[str, str], float | None]:
    frame = matrix.frame()
    return {
        (row.src, row.dst): None if math.isnan(row.rate_bytes_per_s) else float(row.rate_bytes_per_s)
        for row in frame.itertuples()
    }
