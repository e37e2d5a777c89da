"""The results catalog on the terminal (rich tables) and as JSON, for ``harness results``."""

import math
from datetime import datetime
from pathlib import Path

import pandas as pd
from rich.table import Table

from harness.console import make_table
from harness.results.catalog import CATALOG_FILE
from harness.results.comparison import Comparison
from harness.results.summary import PARTS, layer_label

MISSING = "-"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else MISSING


def _duration(entry: dict) -> str:
    """Minutes and seconds from start to end; missing when either end is unknown."""
    if not entry["started_at"] or not entry["ended_at"]:
        return MISSING
    minutes, seconds = divmod(round((entry["ended_at"] - entry["started_at"]).total_seconds()), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def _hosts(entry: dict) -> str:
    if entry["edge_hosts"] or entry["cloud_hosts"]:
        return f"{', '.join(entry['edge_hosts'])} → {', '.join(entry['cloud_hosts'])}"
    return ", ".join(entry["hosts"]) or MISSING


def _rows(entry: dict) -> str:
    expected = MISSING if entry["expected"] is None else f"{entry['expected']:,}"
    return f"{entry['rows']:,}/{expected}"


def _ms(value: float | None) -> str:
    return MISSING if value is None or math.isnan(value) else f"{value:,.2f}"


def _best(entry: dict) -> str:
    """Each run's best cut and its median end-to-end time, a line per run (named when there are several)."""
    lines = []
    for run in entry["runs"]:
        where = (
            f"pipeline {run['best_pipeline']}" if run["best_pipeline"] else f"cut {run['best_cut']} {run['best_layer']}"
        )
        figure = f"{where}, {_ms(run['best_e2e_ms'])} ms"
        lines.append(f"{run['run']}: {figure}" if len(entry["runs"]) > 1 else figure)
    return "\n".join(lines) or MISSING


def catalog_table(root: Path, entries: list[dict]) -> Table:
    table = make_table(
        f"{root / CATALOG_FILE}: {len(entries)} registered, newest first",
        ["run id", "manifest", "status", "started (UTC)", "took>", "edge → cloud", "rows>", "best cut (median e2e)"],
        caption="rows: recorded/expected; `harness results show ID` for one sweep's cuts",
    )
    for entry in entries:
        table.add_row(
            entry["run_id"],
            entry["manifest"] or MISSING,
            entry["status"],
            _when(entry["started_at"]),
            _duration(entry),
            _hosts(entry),
            _rows(entry),
            _best(entry),
        )
    return table


def entry_table(entry: dict) -> Table:
    """One sweep's catalog entry, a field per line."""
    table = make_table(f"sweep {entry['run_id']}", ["field", "value"])
    versions = entry["versions"]
    fields = {
        "folder": str(entry["folder"]),
        "manifest": f"{entry['manifest'] or MISSING} ({entry['manifest_path'] or 'path unknown'})",
        "inventory": entry["inventory"] or MISSING,
        "status": entry["status"],
        "hosts": _hosts(entry),
        "started (UTC)": _when(entry["started_at"]),
        "ended (UTC)": _when(entry["ended_at"]),
        "took": _duration(entry),
        "rows": _rows(entry),
        "median e2e": f"{_ms(entry['median_e2e_ms'])} ms",
        "git": f"{entry['git_revision'] or MISSING}{' (dirty)' if entry['git_dirty'] else ''}",
        "versions": ", ".join(f"{name} {version}" for name, version in versions.items()) or MISSING,
    }
    for name, value in fields.items():
        table.add_row(name, value)
    return table


def cut_medians_table(run_id: str, medians: pd.DataFrame) -> Table:
    """Per run and cut (and pipeline, over tiers), the medians DuckDB computed over the sweep's
    records; each run's best marked."""
    best = set(
        medians.sort_values(["run", "total_ms_median", "pipeline", "cut"])
        .groupby("run")
        .head(1)[["run", "pipeline", "cut"]]
        .itertuples(index=False, name=None)
    )
    table = make_table(
        f"{run_id}: medians per cut (ms)",
        ["run", "cut>", "after", "n>", *(f"{part}>" for part in PARTS), ""],
        caption="cloud = decode + tail + encode on the worker; total = end-to-end",
    )
    for row in medians.itertuples(index=False):
        table.add_row(
            row.run,
            str(row.cut),
            layer_label(row.layer, row.pipeline),
            str(row.n),
            *(_ms(getattr(row, f"{part}_ms_median")) for part in PARTS),
            "best" if (row.run, row.pipeline, row.cut) in best else "",
        )
    return table


def comparison_table(comparison: Comparison) -> Table:
    table = make_table(
        f"B = {comparison.b} against A = {comparison.a}: median end-to-end per cut (ms)",
        ["run", "cut>", "after", "A>", "B>", "B/A>"],
        caption=f"chart: {comparison.chart}",
    )
    for row in comparison.rows.itertuples(index=False):
        ratio = MISSING if pd.isna(row.ratio) else f"{row.ratio:.3f}"
        table.add_row(row.run, str(row.cut), row.layer, _ms(row.a_ms), _ms(row.b_ms), ratio)
    return table


def query_table(frame: pd.DataFrame) -> Table:
    """A query's result as it came, every value as text; empty cells for NULL."""
    table = make_table(f"rows: {len(frame)}", [str(column) for column in frame.columns])
    for row in frame.itertuples(index=False):
        table.add_row(*("" if _is_null(value) else str(value) for value in row))
    return table


def _is_null(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def entry_record(entry: dict) -> dict:
    """An entry as JSON values: paths as text, times in ISO 8601 (UTC)."""
    return {
        name: str(value) if isinstance(value, Path) else value.isoformat() if isinstance(value, datetime) else value
        for name, value in entry.items()
    }
