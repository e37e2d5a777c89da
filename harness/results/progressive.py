"""The early-exit part of a sweep's results (seed 002): the exits table, the front and the report's
section.

``exits.csv`` has one row per model, placement and threshold (c_thr), measured: accuracy, where the
samples left, bytes and latency per sample, the serverless cloud's cost per 1,000 samples and that
cost as a share of cloud-only, the memory of each part with its exits (from the training record
the sweep kept), and the peak resident memory of the edge process and of the worker (the largest
the run's records report: each host's peak so far, so a later run includes an earlier one's).
Beside them, per model, two baselines from the per-layer profiles the sweep measured, marked
``profiled``: ``cloud only`` (the input sent, the whole network on the cloud, billed per sample)
and ``edge only`` (the whole network on the edge). The split without early answers is the c_thr
1.0 run, which the thresholds' rows already hold. ``front`` marks the measured rows no other beats
on latency, error and cost at once.
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from harness.errors import BadInput
from harness.exits.cost import PriceModel, load_prices
from harness.exits.front import non_dominated
from harness.exits.summary import progressive_summary
from harness.exits.trained import exits_folder
from harness.manifest.matrix import Run, expand
from harness.manifest.schema import ExitsSpec, Manifest
from harness.results.folder import ResultsFolder

EXITS_COLUMNS = {
    "kind": "VARCHAR",
    "model": "VARCHAR",
    "placement": "VARCHAR",
    "run": "VARCHAR",
    "threshold": "DOUBLE",
    "samples": "DOUBLE",
    "edge_share": "DOUBLE",
    "exit_shares": "VARCHAR",
    "bytes_per_sample": "DOUBLE",
    "median_ms": "DOUBLE",
    "p95_ms": "DOUBLE",
    "cost_per_1000": "DOUBLE",
    "cost_vs_cloud_only": "DOUBLE",
    "accuracy": "DOUBLE",
    "error": "DOUBLE",
    "edge_memory_mb": "DOUBLE",
    "cloud_memory_mb": "DOUBLE",
    "edge_peak_rss_mb": "DOUBLE",
    "cloud_peak_rss_mb": "DOUBLE",
    "front": "BOOLEAN",
}
"""The columns of ``exits.csv`` in order, with their SQL types (the catalog's ``exits`` view)."""
OBJECTIVES = ("median_ms", "error", "cost_per_1000")
"""What the front weighs, lower better each (error is one minus accuracy)."""


def exit_runs(folder: ResultsFolder) -> tuple[ExitsSpec, list[Run]] | None:
    """The manifest's exits and its runs, as the sweep in ``folder`` ran them; None without exits."""
    if not folder.manifest.is_file():
        return None
    data = yaml.safe_load(folder.manifest.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not data.get("exits"):
        return None
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadInput(f"{folder.manifest}: field {where}: {first['msg']}") from None
    return manifest.exits, expand(manifest)


def exits_table(folder: ResultsFolder, records: pd.DataFrame) -> pd.DataFrame | None:
    """The table ``exits.csv`` holds (written by the caller), or None for a sweep without exits."""
    found = exit_runs(folder)
    if found is None or records.empty:
        return None
    spec, runs = found
    prices = load_prices(Path(spec.cost.prices) if spec.cost.prices else None)
    layers = pd.read_parquet(folder.layers) if folder.layers.is_file() else None
    tables = []
    for model, model_runs in _by_model(runs).items():
        rows = records[records["run"].isin([run.id for run in model_runs])]
        if rows.empty:
            continue
        whole = _whole_network_s(layers, model)
        measured = progressive_summary(rows, prices, spec.cost.memory_mb, whole.get("cloud"))
        placement = {run.id: run.exits.placement[0] for run in model_runs if run.exits is not None}
        measured.insert(0, "kind", "measured")
        measured.insert(1, "model", model)
        measured.insert(2, "placement", measured["run"].map(placement))
        for part in ("edge", "cloud"):
            measured[f"{part}_memory_mb"] = [
                _part_memory_mb(folder, model, chosen, part) for chosen in measured["placement"]
            ]
        peaks = rows.groupby("run", sort=False)[["edge_peak_rss", "cloud_peak_rss"]].max() / 1e6
        for part in ("edge", "cloud"):
            measured[f"{part}_peak_rss_mb"] = measured["run"].map(peaks[f"{part}_peak_rss"])
        tables.append(measured)
        tables.append(_baselines(model, rows, measured, whole, _input_bytes(model_runs), prices, spec.cost.memory_mb))
    if not tables:
        return None
    table = pd.concat(tables, ignore_index=True)
    table["error"] = 1 - table["accuracy"]
    table["front"] = False
    for _, group in table[table["kind"] == "measured"].groupby("model"):
        objectives = [name for name in OBJECTIVES if group[name].notna().all()]
        kept = non_dominated(group[objectives].to_numpy())
        table.loc[group.index[kept], "front"] = True
    return table[list(EXITS_COLUMNS)]


def _by_model(runs: list[Run]) -> dict[str, list[Run]]:
    grouped: dict[str, list[Run]] = {}
    for run in runs:
        grouped.setdefault(run.model.name, []).append(run)
    return grouped


def _whole_network_s(layers: pd.DataFrame | None, model: str) -> dict[str, float]:
    """The whole network's time on each role's host, from the per-layer profiles (each layer's
    median over the runs that profiled it, summed)."""
    if layers is None:
        return {}
    mine = layers[layers["model"] == model]
    per_layer = mine.groupby(["role", "layer"], sort=False)["median_ns"].median()
    return {role: float(values.sum()) / 1e9 for role, values in per_layer.groupby(level="role")}


def _part_memory_mb(folder: ResultsFolder, model: str, placement: str, part: str) -> float:
    """A part's parameters and buffers with its exits, from the training record the sweep kept."""
    record = exits_folder(folder.trained, model, placement) / "training.json"
    if not record.is_file():
        return math.nan
    memory = json.loads(record.read_text())["plan"]["memory"][part]
    return (memory["layers_bytes"] + memory["exits_bytes"]) / 1e6


def _baselines(
    model: str,
    rows: pd.DataFrame,
    measured: pd.DataFrame,
    whole: dict[str, float],
    input_bytes: float,
    prices: PriceModel,
    memory_mb: int,
) -> pd.DataFrame:
    """Cloud only and edge only, from the profiles; their accuracy is the final classifier's, as the
    c_thr 1.0 run measured it (no sample leaves early there). Cloud only sends the input (float32)
    at the run's rate, and is billed the whole network per sample with the final answer's reply."""
    control = measured.loc[measured["threshold"] == 1.0, "accuracy"]
    accuracy = float(control.mean()) if len(control) else np.nan
    rate = float(rows["rate"].iloc[0])
    finals = rows.loc[rows["exit"] == 0, "reply_bytes_wire"]
    reply = int(finals.median()) if len(finals) else 0
    baselines = []
    if "cloud" in whole:
        sending_s = input_bytes / rate if rate > 0 and math.isfinite(rate) else 0.0
        cost = 1000 * prices.sample_cost(memory_mb, whole["cloud"], reply)
        baselines.append(("cloud only", 0.0, input_bytes, 1e3 * (sending_s + whole["cloud"]), cost, 1.0))
    if "edge" in whole:
        baselines.append(("edge only", 1.0, 0.0, 1e3 * whole["edge"], 0.0, 0.0))
    return pd.DataFrame(
        [
            {
                "kind": "profiled",
                "model": model,
                "run": name,
                "edge_share": edge_share,
                "bytes_per_sample": sent,
                "median_ms": latency,
                "cost_per_1000": cost,
                "cost_vs_cloud_only": relative,
                "accuracy": accuracy,
            }
            for name, edge_share, sent, latency, cost, relative in baselines
        ]
    )


def _input_bytes(runs: list[Run]) -> float:
    """One float32 sample of the model's input, where the manifest gives its shape."""
    shape = runs[0].model.input_shape
    return float(np.prod(shape[1:]) * 4) if shape else math.nan
