"""A sweep over tiers: which pipelines each run measures, on which hosts, fixed before anything starts.

A pipeline is the edge (the first host of the first tier, where inputs start and replies end) running
up to a cut, then one worker host per later stage, each from its cut to the next. A run measures the
manifest's own pipelines (``cuts: [[3, 13]]``, each on the first host of each later tier, as
``harness place`` prices them), the pipeline its ``placement`` strategy chooses, and the pipeline of
every strategy its ``evaluate`` lists, each distinct pipeline once however many strategies chose it.
Strategies solve the problem ``harness place`` builds (the model profiled here, scaled by each
host's ``harness_speed``, the manifest's link between every two hosts) and their predictions are
kept beside what the sweep then measures.

The choice is written into the results folder before the first inference, so a resumed sweep
measures the very pipelines the stopped one chose, whatever a new profile would say.
"""

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import BadInput
from harness.manifest import LoadedManifest
from harness.manifest.validate import field_line
from harness.partition.placing import Placed, PlacedRun, place_runs
from harness.sweep.topology import worker_places
from harness.wire.link import parse_rate

GIVEN = "given"
"""The strategy name of a manifest's own pipeline, as ``harness place`` labels it (``given [3, 13]``)."""


@dataclass(frozen=True)
class Pipeline:
    """``source`` runs up to ``cuts[0]``; ``workers[i]`` from ``cuts[i]`` to the next cut, the last to
    the output. No cuts: the source runs the whole model."""

    source: str
    cuts: tuple[int, ...]
    workers: tuple[str, ...]

    @property
    def label(self) -> str:
        """``rpi1>3>jetson1>13>gpu1``: hosts and the cuts between them, as records name the pipeline."""
        parts = [self.source]
        for cut, worker in zip(self.cuts, self.workers, strict=True):
            parts += [str(cut), worker]
        return ">".join(parts)


@dataclass(frozen=True)
class Choice:
    """One strategy's pipeline for one run, and what it predicted; ``pipeline`` is empty where it
    found no feasible placement (nothing is measured for it then)."""

    run: str
    strategy: str
    pipeline: str
    predicted_ms: float | None
    status: str
    solve_ms: float
    gap: float | None
    """Above ``dp``'s optimum, as a fraction, by the same prediction."""


@dataclass
class SweepPipelines:
    """Every run's pipelines, in the order the sweep measures them, and the strategies' choices."""

    runs: dict[str, list[Pipeline]] = field(default_factory=dict)
    choices: list[Choice] = field(default_factory=list)
    adapt: dict[str, dict] = field(default_factory=dict)
    """Per run that re-plans, what the edge needs to (``harness.sweep.adapting.PlanAdapt``)."""
    hosts: list[str] = field(default_factory=list)
    """Where runs re-plan, every host of the tiers, each of which then runs a worker to be probed."""

    @property
    def source(self) -> str:
        return next(pipeline.source for pipelines in self.runs.values() for pipeline in pipelines)

    @property
    def workers(self) -> list[str]:
        """Every worker host of every pipeline (every host of the tiers, where runs re-plan), each once,
        in the order they first appear."""
        if self.hosts:
            return list(self.hosts)
        hosts = (worker for pipelines in self.runs.values() for pipeline in pipelines for worker in pipeline.workers)
        return list(dict.fromkeys(hosts))

    def next_hops(self) -> dict[str, list[str]]:
        """Each worker host's next hops over all pipelines: the peers it must be allowed to forward to;
        where runs re-plan, every other host, which it may also have to probe."""
        if self.hosts:
            return {host: [other for other in self.hosts if other != host] for host in self.hosts}
        peers: dict[str, list[str]] = {host: [] for host in self.workers}
        for pipelines in self.runs.values():
            for pipeline in pipelines:
                for host, following in zip(pipeline.workers, pipeline.workers[1:], strict=False):
                    if following not in peers[host]:
                        peers[host].append(following)
        return peers

    def write(self, path: Path) -> Path:
        data = {
            "runs": {run: [asdict(pipeline) for pipeline in pipelines] for run, pipelines in self.runs.items()},
            "choices": [asdict(choice) for choice in self.choices],
            "adapt": self.adapt,
            "hosts": self.hosts,
        }
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> "SweepPipelines":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            runs = {
                run: [Pipeline(item["source"], tuple(item["cuts"]), tuple(item["workers"])) for item in pipelines]
                for run, pipelines in data["runs"].items()
            }
            return cls(runs, [Choice(**choice) for choice in data["choices"]], data["adapt"], data["hosts"])
        except FileNotFoundError:
            raise BadInput(f"{path} does not exist; expected the pipelines a sweep over tiers chose") from None
        except (ValueError, KeyError, TypeError) as error:
            raise BadInput(
                f"{path}: cannot be read ({error}); expected the pipelines a sweep over tiers chose"
            ) from None


def judged_strategies(loaded: LoadedManifest) -> list[tuple[str, dict]]:
    """The strategies a sweep over tiers measures: its placement, then each of ``evaluate``, each once."""
    manifest = loaded.manifest
    wanted: dict[str, dict] = {}
    if manifest.placement is not None:
        wanted[manifest.placement.name] = dict(manifest.placement.options)
    for spec in manifest.evaluate:
        wanted.setdefault(spec.name, dict(spec.options or {}))
    return list(wanted.items())


def choose_pipelines(loaded: LoadedManifest, inventory: Path, repeats: int = 10) -> SweepPipelines:
    """Every run's pipelines on ``inventory``'s tier hosts; raises ``BadInput`` at the manifest's line
    for a pipeline no host can run, and where a run would have nothing to measure."""
    strategies = judged_strategies(loaded)
    names = [name for name, _ in strategies]
    found = place_runs(loaded, inventory, strategies=names or ["dp"], repeats=repeats, options=dict(strategies))
    chosen = SweepPipelines()
    for placed_run in found:
        source = placed_run.instance.hosts[placed_run.instance.problem.source].name
        pipelines: list[Pipeline] = []
        for placed in placed_run.placed:
            if not (placed.strategy.startswith(GIVEN) or placed.strategy in names):
                continue
            pipeline = _pipeline(source, placed)
            if pipeline is not None and pipeline not in pipelines:
                pipelines.append(pipeline)
            chosen.choices.append(_choice(placed_run.run, placed, pipeline))
        if not pipelines:
            line, name = field_line(loaded.rendered, ("placement",) if loaded.manifest.placement else ("evaluate",))
            raise BadInput(
                f"{loaded.rendered.path}:{line}: field {name}: no strategy found a feasible placement for run "
                f"{placed_run.run} on the hosts of {inventory} (expected one within every host's memory, over "
                "links that exist); `harness place` shows each strategy's answer"
            )
        chosen.runs[placed_run.run] = pipelines
        if loaded.manifest.adapt is not None:
            chosen.adapt[placed_run.run] = _adapt_plan(loaded, inventory, placed_run)
            chosen.hosts = [host.name for host in placed_run.instance.hosts]
    return chosen


def _adapt_plan(loaded: LoadedManifest, inventory: Path, placed_run: PlacedRun) -> dict:
    """What the edge re-plans with: the policy, the strategy, this run's problem as ``harness place``
    built it (links aside, which the edge measures), every host's worker, the link events by host."""
    manifest = loaded.manifest
    spec, placement = manifest.adapt, manifest.placement
    instance, problem = placed_run.instance, placed_run.instance.problem
    names = [host.name for host in instance.hosts]
    in_group = {
        group: [host.name for host in instance.hosts if host.group == group] for group in manifest.hosts.pipeline
    }
    events = []
    for event in manifest.link_events:
        first, second = (in_group[group] for group in event.pair)
        pairs = [[a, b] for a in first for b in second] + [[b, a] for a in first for b in second]
        rate = parse_rate(event.rate)
        events.append({"at_s": event.at_s, "pairs": pairs, "rate": None if math.isinf(rate) else rate})
    return {
        "every_s": spec.every_s,
        "min_gain": spec.min_gain,
        "rounds": spec.rounds,
        "probe_bytes": spec.probe_kb * 1024,
        "strategy": placement.name,
        "objective": placement.objective,
        "options": dict(placement.options),
        "hosts": [
            {
                "name": host.name,
                "group": host.group,
                "tier": host.tier,
                "speed": host.speed,
                "memory_bytes": None if math.isinf(host.memory_bytes) else host.memory_bytes,
            }
            for host in instance.hosts
        ],
        "cuts": list(instance.cuts),
        "compute_s": problem.compute_s.tolist(),
        "segment_bytes": problem.segment_bytes.tolist(),
        "cut_bytes": problem.cut_bytes.tolist(),
        "workers": pipeline_places(inventory, names, manifest.worker.port),
        "events": events,
    }


def _pipeline(source: str, placed: Placed) -> Pipeline | None:
    if placed.placement is None or not placed.placement.feasible:
        return None
    return Pipeline(source, tuple(placed.cuts), tuple(placed.workers))


def _choice(run: str, placed: Placed, pipeline: Pipeline | None) -> Choice:
    placement = placed.placement
    feasible = pipeline is not None
    return Choice(
        run=run,
        strategy=placed.strategy,
        pipeline=pipeline.label if feasible else "",
        predicted_ms=placement.value_s * 1e3 if feasible else None,
        status=placement.status if placement is not None else "skipped",
        solve_ms=placement.solve_s * 1e3 if placement is not None else 0.0,
        gap=placed.gap,
    )


def pipeline_places(inventory: Path, workers: list[str], base_port: int) -> dict[str, str]:
    """Each worker host's endpoint: its worker address, at ``base_port`` or the next free one where
    several worker hosts share an address."""
    places = worker_places(inventory, workers, base_port)
    return {host: f"tcp://{address}:{port}" for host, (address, port) in places.items()}
