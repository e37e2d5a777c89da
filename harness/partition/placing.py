"""``harness place``: the placement each strategy chooses for a manifest's pipeline of tier groups,
with its prediction per stage, before anything is deployed.

Each run's model is profiled once on this machine (see ``placement.instance`` for how hosts'
speed, memory and links enter); every strategy then solves the same problem, and ``dp``'s optimum
is the yardstick each other strategy's gap is taken against. ``exhaustive`` is skipped with its
reason where the instance is too large for it, rather than failing the command.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import BadInput
from harness.links.matrix import LinkMatrix, read_matrix
from harness.manifest import LoadedManifest
from harness.manifest.validate import field_line
from harness.partition.evaluate import split_for
from harness.partition.placement import Placement, Stage, place, strategy_names
from harness.partition.placement.instance import LabInstance, TierHost, lab_instance, tier_hosts
from harness.partition.situation import profile_here


@dataclass(frozen=True)
class Placed:
    """One strategy's answer for one run: the placement, its gap to ``dp``, the pipeline it means."""

    run: str
    strategy: str
    placement: Placement | None
    gap: float | None
    cuts: tuple[int, ...]
    workers: tuple[str, ...]
    stages: tuple[Stage, ...]
    chosen: bool
    skipped: str = ""


@dataclass(frozen=True)
class PlacedRun:
    run: str
    model: str
    instance: LabInstance
    objective: str
    placed: list[Placed]


def place_runs(
    loaded: LoadedManifest,
    inventory: Path,
    links: Path | None = None,
    strategies: list[str] | None = None,
    objective: str | None = None,
    repeats: int = 10,
    profiles: Path | None = None,
    options: dict[str, dict] | None = None,
) -> list[PlacedRun]:
    """Every strategy's placement for each run of ``loaded`` on ``inventory``'s tier hosts;
    ``profiles``: a sweep's ``layers.parquet``, whose hosts' own profiles replace the scaled one;
    ``options``: each strategy's options by name (the manifest's placement's by default)."""
    manifest = loaded.manifest
    hosts = tier_hosts(inventory, manifest.hosts.pipeline)
    matrix = read_matrix(links) if links is not None else None
    chosen = manifest.placement
    wanted = strategies or sorted(strategy_names(), key=lambda name: name != "dp")
    if chosen is not None and chosen.name not in wanted:
        wanted = [*wanted, chosen.name]
    goal = objective or (chosen.objective if chosen else "latency")
    given = options if options is not None else ({chosen.name: dict(chosen.options)} if chosen else {})
    layers = _read_layers(profiles) if profiles is not None else None
    splits: dict[str, tuple] = {}
    found = []
    for run in loaded.runs:
        key = run.model.model_dump_json()
        if key not in splits:
            split = split_for(run.model)
            here = profile_here(split, repeats)
            splits[key] = (split, [_host_profile(layers, host, split, here) for host in hosts])
        split, layer_ns = splits[key]
        if matrix is None:
            names = [host.name for host in hosts]
            run_links, label = LinkMatrix.declared(names, run.link.rate_bytes, run.link.delay_ns / 1e9), "declared"
        else:
            run_links, label = matrix, str(links)
        instance = lab_instance(split, [cut.index for cut in split.cuts], layer_ns, hosts, run_links, label)
        placed, optimum = _solve_all(run.id, instance, wanted, goal, chosen, given)
        placed += _given_pipelines(loaded, run.id, instance, goal, optimum)
        found.append(PlacedRun(run.id, run.model.name, instance, goal, placed))
    return found


def _read_layers(path: Path) -> pd.DataFrame:
    try:
        layers = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise BadInput(f"{path}: cannot read per-layer profiles ({error}); expected a sweep's layers.parquet") from None
    missing = [column for column in ("host", "model", "run", "layer", "median_ns") if column not in layers.columns]
    if missing:
        raise BadInput(f"{path}: no column {', '.join(missing)}; expected a sweep's layers.parquet")
    return layers


def _host_profile(layers: pd.DataFrame | None, host: TierHost, split, here: list[float]) -> list[float]:
    """``host``'s own per-layer profile of ``split`` from ``layers`` (its first run of the model whose
    layers match), else this machine's divided by the host's speed."""
    if layers is not None:
        rows = layers[(layers["host"] == host.name) & (layers["model"] == split.name)]
        names = [layer.name for layer in split.layers]
        for _, run in rows.groupby("run", sort=False):
            if list(run["layer"]) == names:
                return [float(value) for value in run["median_ns"]]
    return [value / host.speed for value in here]


def _given_pipelines(
    loaded: LoadedManifest, run: str, instance: LabInstance, objective: str, optimum: float | None
) -> list[Placed]:
    """The manifest's own pipelines (``cuts: [[3, 13]]``) priced like any strategy's; one that breaks
    a rule (a block too large for its host's memory, a link that is a gap) is refused at its line.
    ``optimum``: ``dp``'s value where it was solved already."""
    cuts = loaded.manifest.cuts
    if not (isinstance(cuts, list) and isinstance(cuts[0], list)):
        return []
    rows = []
    for number, plan in enumerate(cuts):
        hosts = instance.given(plan)
        try:
            instance.problem.check(hosts, f"pipeline {plan}")
        except BadInput as error:
            line, field = field_line(loaded.rendered, ("cuts", number))
            raise BadInput(f"{loaded.rendered.path}:{line}: field {field}: {error}") from None
        value = float(instance.problem.price(np.array([hosts]), objective)[0])
        if optimum is None:
            optimum = place("dp", instance.problem, objective).value_s
        found = Placement(f"given {plan}", objective, hosts, value, "given", 0.0)
        rows.append(_placed(run, instance, found.strategy, found, optimum, chosen=False))
    return rows


def _solve_all(
    run: str, instance: LabInstance, wanted: list[str], objective: str, chosen, options: dict[str, dict]
) -> tuple[list[Placed], float | None]:
    """Each wanted strategy's row, and ``dp``'s optimum where it was among them."""
    solved: list[tuple[str, Placement | None, str]] = []
    for name in wanted:
        try:
            solved.append((name, place(name, instance.problem, objective, **options.get(name, {})), ""))
        except BadInput as error:
            if name != "exhaustive":
                raise
            solved.append((name, None, str(error)))
    optimum = next((found.value_s for name, found, _ in solved if name == "dp" and found and found.feasible), None)
    rows = [
        _placed(run, instance, name, found, optimum, chosen is not None and chosen.name == name, skipped)
        for name, found, skipped in solved
    ]
    return rows, optimum


def _placed(
    run: str,
    instance: LabInstance,
    name: str,
    found: Placement | None,
    optimum: float | None,
    chosen: bool,
    skipped: str = "",
) -> Placed:
    """A row: the placement with the pipeline, stages and gap to ``optimum`` it means, where feasible."""
    feasible = found is not None and found.feasible
    cuts, workers = instance.pipeline(found.hosts) if feasible else ((), ())
    return Placed(
        run=run,
        strategy=name,
        placement=found,
        gap=found.gap_to(optimum) if feasible and optimum is not None else None,
        cuts=cuts,
        workers=workers,
        stages=tuple(found.stages(instance.problem)) if feasible else (),
        chosen=chosen,
        skipped=skipped,
    )
