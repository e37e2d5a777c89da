"""Partitioners judged against a sweep: each one's pick, its predictions beside the measured
latency of every cut, and its regret (the measured latency of its pick over the best measured).

A regret is a ratio of medians, and the best of a sweep's cuts is the lowest of many noisy medians,
so a pick the measurements cannot tell from the best still shows a regret a little above 1. Where
the per-inference times are at hand, ``p_slower`` says how surely the pick is slower: the one-sided
Mann-Whitney U p-value that its inferences take longer than the best cut's.

The sweep writes ``decisions.csv`` (one row per run and partitioner) and ``predictions.parquet``
(one row per run, partitioner and cut) into its results folder, so the report and later analyses
read them like the records, without the model or the hosts.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from harness.errors import BadInput
from harness.manifest.matrix import Run
from harness.manifest.schema import ChooseCodecSpec, ModelSpec
from harness.model import Granularity, SplitGraph, build_split_graph, load_model
from harness.partition import Situation, decide
from harness.partition.codec_choice import CHOICE_COLUMNS, choose, codec_groups
from harness.partition.codec_costs import measured_codec_ns
from harness.partition.situation import measured_totals, profiles_from_layers, run_situation
from harness.results import ResultsFolder
from harness.results.codecs import codec_table
from harness.results.decisions import DECISION_COLUMNS
from harness.results.summary import summarise


@dataclass(frozen=True)
class Judged:
    run: str
    situation: Situation
    rows: list[dict]
    predictions: list[dict]


def judge(
    run: str,
    situation: Situation,
    partitioners: list[dict],
    samples: Mapping[int, np.ndarray] | None = None,
    edge_energy: Mapping[int, tuple[float, float]] | None = None,
) -> Judged:
    """Every partitioner's decision on ``situation``, with regret where cuts were measured, and
    ``p_slower`` where ``samples`` holds each cut's end-to-end milliseconds per inference. A
    partitioner minimising energy is also judged in energy where ``edge_energy`` holds each cut's
    measured edge millijoules and transfer milliseconds (``measured_edge_energy``)."""
    measured = situation.measured_ms
    best_cut = min(measured, key=lambda cut: (measured[cut], cut)) if measured else None
    names = {cut.index: cut.after for cut in situation.split.cuts}
    rows, predictions = [], []
    for spec in partitioners:
        options = {key: value for key, value in spec.items() if key != "name"}
        timed = decide(spec["name"], situation, **options)
        decision = timed.decision
        label = " ".join([spec["name"], *(f"{key}={value}" for key, value in options.items())])
        picked_ms = measured.get(decision.cut)
        argmin = decision.argmin if decision.argmin is not None else decision.cut
        rows.append(
            {
                "run": run,
                "partitioner": label,
                "cut": decision.cut,
                "layer": names[decision.cut],
                "argmin": argmin,
                "argmin_regret": _regret(measured, argmin, best_cut),
                "predicted_ms": decision.predicted_ms.get(decision.cut),
                "measured_ms": picked_ms,
                "best_cut": best_cut,
                "best_ms": measured.get(best_cut) if best_cut is not None else None,
                "regret": _regret(measured, decision.cut, best_cut),
                "p_slower": slower_p_value(samples, decision.cut, best_cut),
                "decision_us": timed.decision_ns / 1e3,
                "note": decision.note,
                "energy_regret": _energy_regret(edge_energy, decision.cut, spec),
            }
        )
        predictions += [
            {
                "run": run,
                "partitioner": label,
                "cut": cut,
                "predicted_ms": value,
                "measured_ms": measured.get(cut),
                "picked": cut == decision.cut,
            }
            for cut, value in sorted(decision.predicted_ms.items())
        ]
    return Judged(run, situation, rows, predictions)


def _energy_regret(edge_energy: Mapping[int, tuple[float, float]] | None, cut: int, spec: dict) -> float | None:
    """The edge's measured energy at ``cut`` over the least of any cut, counting its radio at the
    spec's ``radio_watts`` over the measured transfer; None unless the spec minimises energy and
    the edge measured its energy at that cut."""
    if spec.get("objective") != "energy" or not edge_energy or cut not in edge_energy:
        return None
    radio_watts = spec["radio_watts"]
    spent = {index: joules + radio_watts * transfer for index, (joules, transfer) in edge_energy.items()}
    return spent[cut] / min(spent.values()) if min(spent.values()) > 0 else None


def measured_edge_energy(records: pd.DataFrame, run: str) -> dict[int, tuple[float, float]]:
    """Per cut of ``run``: the median millijoules the edge measured and the median transfer in
    milliseconds (None for records without edge energy)."""
    if "edge_joules" not in records.columns:
        return {}
    rows = records[records["run"] == run].dropna(subset=["edge_joules"])
    return {
        int(cut): (1e3 * float(group["edge_joules"].median()), float(group["transfer_ns"].median()) / 1e6)
        for cut, group in rows.groupby("cut")
    }


def _regret(measured: dict[int, float], cut: int, best_cut: int | None) -> float | None:
    """Measured latency of ``cut`` over the best measured; None where either was not measured."""
    if best_cut is None or cut not in measured:
        return None
    return measured[cut] / measured[best_cut]


def slower_p_value(samples: Mapping | None, picked, best) -> float | None:
    """How surely ``picked`` (a cut, or a pipeline) is slower than ``best``: the one-sided
    Mann-Whitney p-value over ``samples``' per-inference times; None for the best itself or
    without samples."""
    if samples is None or best is None or picked == best or picked not in samples:
        return None
    return float(mannwhitneyu(samples[picked], samples[best], alternative="greater").pvalue)


def measured_samples(records: pd.DataFrame, run: str) -> dict[int, np.ndarray]:
    """End-to-end milliseconds of every inference of ``run``, per cut."""
    rows = records[records["run"] == run]
    return {int(cut): group.to_numpy(dtype=float) / 1e6 for cut, group in rows.groupby("cut")["e2e_ns"]}


def split_for(model: ModelSpec) -> SplitGraph:
    """The split graph a run's model spec describes."""
    shape = tuple(model.input_shape) if model.input_shape else None
    loaded = load_model(model.name, model.weights, model.classes)
    return build_split_graph(
        loaded, Granularity.parse(model.granularity), shape, single_tensor_only=model.single_tensor
    )


def write_judgements(folder: ResultsFolder, judged: list[Judged]) -> list[Path]:
    if not judged:
        return []
    decisions = pd.DataFrame([row for item in judged for row in item.rows], columns=list(DECISION_COLUMNS))
    predictions = pd.DataFrame([row for item in judged for row in item.predictions])
    decisions.to_csv(folder.decisions, index=False)
    predictions.to_parquet(folder.predictions, index=False)
    return [folder.decisions, folder.predictions]


def judge_sweep(
    folder: ResultsFolder, runs: list[Run], partitioners: list[dict], choose_codec: ChooseCodecSpec | None = None
) -> list[Path]:
    """Judge every run of a finished sweep that recorded inferences, and with ``choose_codec`` each
    partitioner choosing the codec as well; the files written."""
    records = pd.read_parquet(folder.records_parquet)
    summary = summarise(records)
    if not folder.layers.is_file():
        raise BadInput(f"{folder.layers} is missing; partitioners decide from the profiles a sweep records there")
    layers = pd.read_parquet(folder.layers)
    splits: dict[str, SplitGraph] = {}
    judged = []
    for run in runs:
        if run.id not in set(summary["run"]):
            continue
        key = run.model.model_dump_json()
        if key not in splits:
            splits[key] = split_for(run.model)
        edge_ns, cloud_ns = profiles_from_layers(layers, run.id, splits[key], str(folder.layers))
        codec_ns = measured_codec_ns(records, run.id)
        situation = run_situation(run, splits[key], edge_ns, cloud_ns, measured_totals(summary, run.id), codec_ns)
        energy = measured_edge_energy(records, run.id)
        judged.append(judge(run.id, situation, partitioners, measured_samples(records, run.id), energy))
    written = write_judgements(folder, judged)
    if choose_codec is not None:
        written.append(_write_codec_choices(folder, runs, judged, records, partitioners, choose_codec))
    return written


def _write_codec_choices(
    folder: ResultsFolder,
    runs: list[Run],
    judged: list[Judged],
    records: pd.DataFrame,
    partitioners: list[dict],
    spec: ChooseCodecSpec,
) -> Path:
    codecs = codec_table(records)
    if codecs is None or codecs["accuracy"].isna().all():
        raise BadInput("choose_codec needs records of several codecs on a labelled dataset; the sweep has none")
    situations = {item.run: item.situation for item in judged}
    rows = [
        row
        for group, members in codec_groups(runs).items()
        for row in choose(group, members, situations, codecs, partitioners, spec.max_accuracy_drop)
    ]
    pd.DataFrame(rows, columns=list(CHOICE_COLUMNS)).to_csv(folder.codec_choices, index=False)
    return folder.codec_choices
