"""``harness plan``: each partitioner's pick and predicted latency per cut for a manifest's runs,
before (or instead of) sweeping every cut.

The profiles come from one of three places: a finished sweep's ``layers.parquet`` (``--profile
RESULTS_DIR``; its records also let the oracle take part), a short profiling sweep on the
inventory's hosts (one inference per run, then the same per-layer profiles every sweep records),
or, with neither, this machine profiling the model for both roles.
"""

import dataclasses
from pathlib import Path

import pandas as pd
from rich.console import Console

from harness.errors import BadInput
from harness.manifest import LoadedManifest
from harness.model import SplitGraph
from harness.partition.codec_costs import estimated_codec_ns, measured_codec_ns
from harness.partition.evaluate import Judged, judge, measured_samples, split_for
from harness.partition.situation import measured_totals, profile_here, profiles_from_layers, run_situation
from harness.results import ResultsFolder, summarise
from harness.sweep.controller import run_sweep
from harness.wire.codecs import CutCodec

DEFAULT_PARTITIONERS = ({"name": "neurosurgeon"}, {"name": "dads"}, {"name": "oracle"})


def plan(loaded: LoadedManifest, profiles: ResultsFolder | None, repeats: int = 10) -> list[Judged]:
    """Every run judged by the manifest's ``evaluate`` partitioners (default neurosurgeon, dads and,
    where records measured every cut, oracle). Records that measured only some cuts (a profiling
    sweep measures one) are left out: the best of a few cuts is no optimum to take regret against."""
    layers = pd.read_parquet(layers_file(profiles)) if profiles else None
    records = pd.read_parquet(profiles.records_parquet) if _has_records(profiles) else None
    summary = summarise(records) if records is not None else None
    splits: dict[str, SplitGraph] = {}
    here: dict[str, tuple[list[float], list[float]]] = {}
    judged = []
    for run in loaded.runs:
        key = run.model.model_dump_json()
        if key not in splits:
            splits[key] = split_for(run.model)
        split = splits[key]
        measured: dict[int, float] = {}
        if layers is not None:
            edge_ns, cloud_ns = saved_profiles(layers, run.id, run.model.name, split, str(profiles.layers))
            if summary is not None:
                measured = measured_totals(summary, run.id)
        else:
            if key not in here:
                profiled = profile_here(split, repeats)
                here[key] = (profiled, profiled)
            edge_ns, cloud_ns = here[key]
        codec_ns = measured_codec_ns(records, run.id) if records is not None else {}
        if not codec_ns:
            codec_ns = estimated_codec_ns(split, CutCodec.parse(run.codec), [cut.index for cut in split.cuts])
        situation = run_situation(run, split, edge_ns, cloud_ns, measured, codec_ns)
        if not set(situation.cuts) <= set(measured):
            situation = run_situation(run, split, edge_ns, cloud_ns, {}, codec_ns)
        samples = measured_samples(records, run.id) if situation.measured_ms else None
        judged.append(judge(run.id, situation, _partitioners(loaded, bool(situation.measured_ms)), samples))
    return judged


def profiles_folder(
    loaded: LoadedManifest, inventory: Path | None, saved: Path | None, console: Console
) -> ResultsFolder | None:
    """Where the profiles come from: a saved results folder, a profiling sweep on ``inventory``
    (its folder is kept and named on ``console``), or None to profile here."""
    if saved is not None:
        return ResultsFolder.open(saved)
    if inventory is None:
        return None
    folder = run_sweep(profiling_manifest(loaded), inventory, None, console).folder
    console.print(f"profiles recorded in {folder.path}")
    return folder


def profiling_manifest(loaded: LoadedManifest) -> LoadedManifest:
    """The manifest's runs cut to one inference each (cut 0), for the profiles a sweep records; runs
    that differ only in their upload plan are profiled once."""
    runs, seen = [], set()
    for run in loaded.runs:
        profiled = run.model_copy(
            update={"cuts": [0], "partitioner": run.partitioner.model_copy(update={"repeats": 1}), "upload": None}
        )
        key = profiled.model_dump_json(exclude={"index", "id"})
        if key not in seen:
            seen.add(key)
            runs.append(profiled)
    manifest = loaded.manifest.model_copy(update={"evaluate": [], "upload": None})
    return dataclasses.replace(loaded, manifest=manifest, runs=runs)


def _partitioners(loaded: LoadedManifest, measured: bool) -> list[dict]:
    """The manifest's ``evaluate`` or the defaults; the oracle only where cuts were measured."""
    wanted = [spec.model_dump(exclude_none=True) for spec in loaded.manifest.evaluate] or list(DEFAULT_PARTITIONERS)
    return [spec for spec in wanted if measured or spec["name"] != "oracle"]


def saved_profiles(layers: pd.DataFrame, run_id: str, model: str, split: SplitGraph, source: str):
    """The run's own profiles, else those of another run of the same model (planning another link)."""
    of_model = layers[layers["model"] == model]
    if of_model.empty:
        known = ", ".join(sorted(set(layers["model"])))
        raise BadInput(f"{source} holds no profile of model '{model}'; it has {known or 'none'}")
    runs = list(dict.fromkeys(of_model["run"]))
    runs.sort(key=lambda run: run != run_id)
    problem = None
    for run in runs:
        try:
            return profiles_from_layers(of_model, run, split, source)
        except BadInput as error:
            problem = error
    raise problem


def layers_file(profiles: ResultsFolder) -> Path:
    if not profiles.layers.is_file():
        raise BadInput(f"{profiles.path} has no layers.parquet; expected the results folder of a sweep")
    return profiles.layers


def _has_records(profiles: ResultsFolder | None) -> bool:
    return profiles is not None and profiles.records_parquet.is_file()
