"""What ``harness manifest render`` shows: the runs a manifest expands to, as a table or as JSON."""

from typing import Any

from rich.table import Table

from harness.console import make_table
from harness.manifest import LoadedManifest, Run


def runs_table(runs: list[Run]) -> Table:
    """One row per run; with exits, the threshold of each and where its cut comes from."""
    exits = runs[0].exits is not None
    codecs = any(run.codec != "none" for run in runs)
    table = make_table(
        f"{runs[0].experiment}: {len(runs)} run{'s' if len(runs) != 1 else ''}",
        ["index>", "id", "model", "granularity", "cuts", "partitioner", "dataset", "link", "compression"]
        + (["codec"] if codecs else [])
        + (["c_thr>"] if exits else []),
    )
    for run in runs:
        table.add_row(
            str(run.index),
            run.id,
            run.model.name,
            run.model.granularity,
            _cuts(run),
            f"{run.partitioner.name} x{run.partitioner.repeats}",
            f"{run.dataset.name} x{run.dataset.count}" + (f" ({run.dataset.path})" if run.dataset.path else ""),
            _link(run),
            run.compression,
            *([run.codec] if codecs else []),
            *([f"{run.threshold:g}"] if exits else []),
        )
    return table


def manifest_record(loaded: LoadedManifest) -> dict[str, Any]:
    return {
        "path": str(loaded.rendered.path),
        "variables": loaded.rendered.variables,
        "text": loaded.rendered.text,
        "runs": [run.model_dump(mode="json") for run in loaded.runs],
    }


def _cuts(run: Run) -> str:
    if run.exits is not None and run.cuts == "all":
        split = run.exits.split
        return split.by + ("" if split.by == "latency" else f" {split.fraction:g}")
    if isinstance(run.cuts, str):
        return run.cuts
    return "; ".join(",".join(map(str, entry)) if isinstance(entry, list) else str(entry) for entry in run.cuts)


def _link(run: Run) -> str:
    delay = f" +{run.link.delay}" if run.link.delay_ns else ""
    return f"{run.link.rate}{delay} ({run.link.shaping})"
