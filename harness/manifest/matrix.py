"""A manifest's matrix: one ``Run`` per combination of its list-valued fields.

A ``Run`` is self-contained (it is shipped as JSON to the edge host, which needs nothing else to
measure it) and its ``id`` is a readable slug that names its results: model, granularity, link and
compression always, then partitioner and dataset when the manifest varies them.
"""

import itertools
import re

from pydantic import Field

from harness.manifest.schema import (
    CompressionText,
    Cuts,
    DatasetSpec,
    HostsSpec,
    LinkSpec,
    Manifest,
    ModelSpec,
    PartitionerSpec,
    PositiveInt,
    StrictModel,
    WorkerSpec,
)
from harness.wire.compression import Compression

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


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
    threads: PositiveInt | None
    task: str | None = None
    worker: WorkerSpec

    @property
    def codec(self) -> Compression:
        return Compression.parse(self.compression)


def _run_cuts(cuts):
    """Pipelines of one cut each (a two-group manifest written as pipelines) are plain cuts."""
    if isinstance(cuts, list) and isinstance(cuts[0], list) and all(len(plan) == 1 for plan in cuts):
        return [plan[0] for plan in cuts]
    return cuts


def expand(manifest: Manifest) -> list[Run]:
    """Every combination, in the order the axes appear in a manifest; the last axis varies fastest."""
    axes = (manifest.model, manifest.partitioner, manifest.dataset, manifest.link, manifest.compression)
    combinations = list(itertools.product(*axes))
    varying = (len(manifest.partitioner) > 1, len(manifest.dataset) > 1)
    ids = _unique([_slug(*combination, *varying) for combination in combinations])
    runs = []
    for index, (model, partitioner, dataset, link, compression) in enumerate(combinations):
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
                threads=manifest.threads,
                task=manifest.task,
                worker=manifest.worker,
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
    partitioners_vary: bool,
    datasets_vary: bool,
) -> str:
    parts = [_short(model.name), model.granularity, link.rate.replace("/", "p")]
    if link.delay_ns:
        parts.append(link.delay)
    if link.shaping != "auto":
        parts.append(link.shaping)
    parts.append(compression)
    if partitioners_vary:
        parts.append(f"{partitioner.name}{partitioner.repeats}")
    if datasets_vary:
        parts.append(f"{_short(dataset.name)}{dataset.count}")
    return "-".join(_UNSAFE.sub("-", part).strip("-") for part in parts)


def _short(name: str) -> str:
    """``experiments.models:tiny_skipnet`` is ``tiny_skipnet`` in an id; a clash gets the run's index anyway."""
    return name.rpartition(":")[2]
