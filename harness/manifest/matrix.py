"""A manifest's matrix: one ``Run`` per combination of its list-valued fields.

A ``Run`` is self-contained (it is shipped as JSON to the edge host, which needs nothing else to
measure it) and its ``id`` is a readable slug that names its results: model, granularity, link and
compression always, the cut codec where there is one, then partitioner and dataset when the
manifest varies them, and the exits' placement and confidence threshold of a run with exits
(``linear-c0.6``).

With exits, every placement and threshold is a run of its own (the last two axes), and each model
runs the backbone and exits ``harness exits train`` wrote into ``exits.trained``: its ``weights``
become that backbone.
"""

import itertools
import re

from pydantic import Field

from harness.exits.trained import EXITS, backbone_file, exits_folder, trained_root
from harness.manifest.schema import (
    CompressionText,
    CutCodecText,
    Cuts,
    DatasetSpec,
    ExitsSpec,
    HostsSpec,
    LinkSpec,
    Manifest,
    ModelSpec,
    PartitionerSpec,
    PositiveInt,
    StrictModel,
    UploadPlanSpec,
    UploadSpec,
    WorkerSpec,
)
from harness.wire.codecs import CutCodec

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class TrainedExits(StrictModel):
    """Where a run's exits were trained: the cut, and the attach cuts of each part's exits in order
    (the sweep runs exactly what ``harness exits train`` wrote, never a plan made again)."""

    cut: int = Field(ge=1)
    edge: list[int]
    cloud: list[int]


class Run(StrictModel):
    """One point of the matrix: a single value for every field of the manifest."""

    index: int = Field(ge=0)
    id: str
    experiment: str
    hosts: HostsSpec
    model: ModelSpec
    cuts: Cuts
    partitioner: PartitionerSpec
    warmup: int = Field(ge=0)
    dataset: DatasetSpec
    link: LinkSpec
    compression: CompressionText
    codec: CutCodecText = "none"
    threads: PositiveInt | None
    task: str | None = None
    worker: WorkerSpec
    exits: ExitsSpec | None = None
    """With exits: the manifest's, with this run's one placement."""
    threshold: float | None = None
    """With exits: the confidence threshold (c_thr) of this run."""
    exit_weights: str | None = None
    """With exits: the exits' weights file, as ``model.weights`` names the backbone's."""
    trained_exits: TrainedExits | None = None
    """With exits, in a sweep: the plan they were trained on, from their training record."""
    upload: UploadSpec | None = None
    """With an incremental upload: the manifest's, with this run's one plan."""


def _run_cuts(cuts):
    """Pipelines of one cut each (a two-group manifest written as pipelines) are plain cuts."""
    if isinstance(cuts, list) and isinstance(cuts[0], list) and all(len(plan) == 1 for plan in cuts):
        return [plan[0] for plan in cuts]
    return cuts


def expand(manifest: Manifest) -> list[Run]:
    """Every combination, in the order the axes appear in a manifest; the last axis varies fastest."""
    exits = manifest.exits
    placements = exits.placement if exits else [None]
    thresholds = exits.thresholds if exits else [None]
    plans = manifest.upload.plans if manifest.upload else [None]
    axes = (manifest.model, manifest.partitioner, manifest.dataset, manifest.link, manifest.compression, manifest.codec)
    combinations = list(itertools.product(*axes, placements, thresholds, plans))
    varying = (len(manifest.partitioner) > 1, len(manifest.dataset) > 1)
    ids = _unique([_slug(*combination, *varying) for combination in combinations])
    runs = []
    for index, (model, partitioner, dataset, link, compression, codec, placement, threshold, plan) in enumerate(
        combinations
    ):
        run_exits, exit_weights = None, None
        if exits is not None:
            root = trained_root(manifest.name, exits.trained)
            backbone = backbone_file(root, model.name, placement, exits.training.mode == "joint")
            model = model.model_copy(update={"weights": str(backbone)})
            run_exits = exits.model_copy(update={"placement": [placement]})
            exit_weights = str(exits_folder(root, model.name, placement) / EXITS)
        runs.append(
            Run(
                index=index,
                id=ids[index],
                experiment=manifest.name,
                hosts=manifest.hosts,
                model=model,
                cuts=_run_cuts(manifest.cuts),
                partitioner=partitioner,
                warmup=manifest.warmup,
                dataset=dataset,
                link=link,
                compression=compression,
                codec=codec,
                threads=manifest.threads,
                task=manifest.task,
                worker=manifest.worker,
                exits=run_exits,
                threshold=threshold,
                exit_weights=exit_weights,
                upload=manifest.upload.model_copy(update={"plans": [plan]}) if plan is not None else None,
            )
        )
    return runs


def _unique(slugs: list[str]) -> list[str]:
    """A slug shared by several runs gets each run's index; if that still clashes, every slug gets it."""
    ids = [slug if slugs.count(slug) == 1 else f"{slug}-{index}" for index, slug in enumerate(slugs)]
    return ids if len(set(ids)) == len(ids) else [f"{slug}-{index}" for index, slug in enumerate(slugs)]


def _slug(
    model: ModelSpec,
    partitioner: PartitionerSpec,
    dataset: DatasetSpec,
    link: LinkSpec,
    compression: str,
    codec: str,
    placement: str | None,
    threshold: float | None,
    plan: UploadPlanSpec | None,
    partitioners_vary: bool,
    datasets_vary: bool,
) -> str:
    parts = [_short(model.name), model.granularity, link.rate.replace("/", "p")]
    if link.delay_ns:
        parts.append(link.delay)
    if link.shaping != "auto":
        parts.append(link.shaping)
    parts.append(compression)
    if codec != "none":
        parts.append(str(CutCodec.parse(codec)))
    if partitioners_vary:
        parts.append(f"{partitioner.name}{partitioner.repeats}")
    if datasets_vary:
        parts.append(f"{_short(dataset.name)}{dataset.count}")
    if placement is not None:
        parts.append(placement)
    if threshold is not None:
        parts.append(f"c{threshold:g}")
    if plan is not None:
        parts.append(plan.label)
    return "-".join(_UNSAFE.sub("-", part).strip("-") for part in parts)


def _short(name: str) -> str:
    """``experiments.models:tiny_skipnet`` is ``tiny_skipnet`` in an id; a clash gets the run's index anyway."""
    return name.rpartition(":")[2]
