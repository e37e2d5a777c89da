"""From per-inference records to one row per run and cut: the numbers the paper's figure plots.

Medians, because a few inferences hit by a scheduler hiccup or a GC pause must not move the figure;
p95 (linear interpolation, as numpy and pandas compute it) beside them, so the spread stays visible.
``cloud`` is everything the worker did (decode, tail, encode); ``total`` is the end-to-end time.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.errors import BadInput
from harness.wire.link import rate_label

PARTS: dict[str, tuple[str, ...]] = {
    "edge": ("edge_ns",),
    "transfer": ("transfer_ns",),
    "cloud": ("cloud_decode_ns", "cloud_ns", "cloud_encode_ns"),
    "total": ("e2e_ns",),
}
RECORD_COLUMNS = ("run", "cut", "layer", *(column for columns in PARTS.values() for column in columns))
REQUIRED = (*RECORD_COLUMNS, "bytes_raw", "bytes_wire")
TIME_COLUMNS = tuple(f"{part}_ms_{stat}" for part in PARTS for stat in ("median", "p95"))
SUMMARY_COLUMNS = ("run", "cut", "pipeline", "layer", "n", *TIME_COLUMNS, "bytes_raw", "bytes_wire")
ENERGY = {"edge_mj_median": "edge_joules", "cloud_mj_median": "cloud_joules"}
"""Median millijoules per inference on each host, from the records' joules: empty where the host had
no power source (and in summaries written before energy was measured)."""
_NS_PER_MS = 1e6


def _require(records: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [column for column in columns if column not in records.columns]
    if missing:
        raise BadInput(f"{what} lack columns {', '.join(missing)}; expected the InferenceRecord fields")
    if records.empty:
        raise BadInput(f"no {what} to summarise; expected at least one inference")


def with_pipeline(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``pipeline`` column: records and summaries written before sweeps over tiers
    lack it, and every one of their rows is of the edge and cloud form (an empty pipeline)."""
    return frame if "pipeline" in frame.columns else frame.assign(pipeline="")


def summarise(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, cut, pipeline), in that order, with the columns of ``SUMMARY_COLUMNS``.

    Times are milliseconds; bytes are the median per inference (``bytes_raw`` is the same for every
    inference at a cut, ``bytes_wire`` varies with compression). ``pipeline`` is empty in the edge
    and cloud form; in a sweep over tiers, ``cut`` is where the pipeline leaves the edge and
    ``cloud`` sums every worker's part.
    """
    _require(records, REQUIRED, "records")
    records = with_pipeline(records)
    parts = records[["run", "cut", "pipeline", "layer", "bytes_raw", "bytes_wire"]].copy()
    for part, columns in PARTS.items():
        parts[part] = records[list(columns)].astype("int64").sum(axis=1)
    for column, joules in ENERGY.items():
        parts[column] = 1e3 * records[joules].astype("float64") if joules in records.columns else float("nan")
    grouped = parts.groupby(["run", "cut", "pipeline"], sort=True)
    summary = grouped.agg(layer=("layer", "first"), n=("total", "size"))
    for part in PARTS:
        summary[f"{part}_ms_median"] = grouped[part].median() / _NS_PER_MS
        summary[f"{part}_ms_p95"] = grouped[part].quantile(0.95, interpolation="linear") / _NS_PER_MS
    for column in ("bytes_raw", "bytes_wire"):
        summary[column] = grouped[column].median().round().astype("int64")
    for column in ENERGY:
        summary[column] = grouped[column].median()
    return summary.reset_index()[[*SUMMARY_COLUMNS, *ENERGY]]


def layer_label(layer: str, pipeline: str) -> str:
    """Where an inference left the edge: its layer, and over tiers the pipeline it took."""
    return f"{layer} of {pipeline}" if pipeline else layer


def best_cuts(summary: pd.DataFrame) -> pd.DataFrame:
    """Per run, the cut (and pipeline, over tiers) with the lowest median total time; on a tie, the
    lowest cut index."""
    _require(summary, ("run", "cut", "layer", "total_ms_median"), "summary rows")
    ordered = with_pipeline(summary).sort_values(["run", "total_ms_median", "cut", "pipeline"], kind="stable")
    best = ordered.groupby("run", sort=True).head(1)
    return best[["run", "cut", "pipeline", "layer", "total_ms_median"]].reset_index(drop=True)


def write_summary(summary: pd.DataFrame, path: Path) -> Path:
    """Milliseconds to six decimals: exactly the integer-nanosecond medians, no float noise."""
    summary.to_csv(path, index=False, float_format="%.6f")
    return path


def read_summary(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise BadInput(f"{path} does not exist; expected the summary.csv that `harness report` writes")
    empty = {column: [""] for column in ENERGY}
    text = {"run": str, "layer": str, "pipeline": str}
    summary = pd.read_csv(path, dtype=text, keep_default_na=False, na_values=empty)
    summary = with_pipeline(summary)
    _require(summary, SUMMARY_COLUMNS, f"summary rows in {path}")
    return summary.assign(**{column: float("nan") for column in ENERGY if column not in summary.columns})


def _link_label(shaping: str, rate: float, delay_ns: int) -> str:
    """Records written before rates were always kept hold 0 for a tc link's rate: it is left unsaid."""
    if shaping == "none":
        link = "unshaped link, rate unlimited"
    elif math.isinf(rate):
        link = f"{shaping} link, rate unlimited"
    else:
        link = f"{shaping} link {rate_label(rate)}" if rate else f"{shaping} link"
    return f"{link} + {delay_ns / 1e6:g} ms delay" if delay_ns else link


def _distinct(values: pd.Series) -> str:
    return ", ".join(str(value) for value in values.drop_duplicates())


@dataclass(frozen=True)
class RunInfo:
    """What a run measured, in words for titles and tables (several values when a run mixed settings)."""

    run: str
    model: str
    granularity: str
    link: str
    compression: str
    cuts: int
    inferences: int
    input_bytes: int | None

    def caption(self) -> str:
        return f"{self.model} ({self.granularity} cuts) · {self.link} · compression {self.compression}"


def run_info(records: pd.DataFrame) -> list[RunInfo]:
    """One per run, in run order. ``input_bytes`` is what cut 0 sends, when cut 0 was measured."""
    columns = ("run", "model", "granularity", "cut", "compression", "shaping", "rate", "delay_ns", "bytes_raw")
    _require(records, columns, "records")
    infos = []
    for run, group in records.groupby("run", sort=True):
        links = group[["shaping", "rate", "delay_ns"]].drop_duplicates().itertuples(index=False)
        inputs = group.loc[group["cut"] == 0, "bytes_raw"]
        infos.append(
            RunInfo(
                run=str(run),
                model=_distinct(group["model"]),
                granularity=_distinct(group["granularity"]),
                link=", ".join(_link_label(*link) for link in links),
                compression=_distinct(group["compression"]),
                cuts=group["cut"].nunique(),
                inferences=len(group),
                input_bytes=int(inputs.iloc[0]) if len(inputs) else None,
            )
        )
    return infos
