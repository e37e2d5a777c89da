"""Continuing a sweep that stopped: ``harness sweep MANIFEST --resume RESULTS_DIR``.

A sweep stops early when it is interrupted, when the controller crashes or its disk fills, or when
a worker or host does not come back. Its folder keeps every row it wrote, and the edge hosts keep
their spools until a teardown. Resuming first collects what the hosts still hold and tears down
what the stopped sweep left running (a plan, a worker, qdiscs); the collected spools are merged
into the folder's records, and only the ``(cut, repeat)`` pairs (``(pipeline, repeat)`` over
tiers) not yet recorded are run. The
manifest must render to the text the folder was made with, so both parts measure one experiment.
"""

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.ansible.runner import run_playbook
from harness.errors import BadInput, ExperimentFailed
from harness.manifest import LoadedManifest
from harness.results import FailedInference, ResultsFolder
from harness.results.records import HopRecord
from harness.results.summary import with_pipeline
from harness.results.uploads import PartitionRecord, QueryRecord
from harness.results.writer import convert_records, read_hops, read_records

RecordKey = tuple[str, int | str, int]
"""A record's place in its sweep: run id, cut (its pipeline's label in a sweep over tiers) and repeat."""


def record_key(run: str, cut: int, pipeline: str, repeat: int) -> RecordKey:
    return (run, pipeline or cut, repeat)


UPLOAD_UNIT = "upload"


def upload_key(run: str, repeat: int) -> RecordKey:
    """One repeat of an upload run, counted like a record (its unit is ``upload``)."""
    return (run, UPLOAD_UNIT, repeat)


@dataclass
class Recorded:
    """What a stopped sweep's folder already holds."""

    keys: set[RecordKey] = field(default_factory=set)
    layer_rows: list[dict] = field(default_factory=list)
    failure_keys: set[tuple] = field(default_factory=set)
    hops: list[HopRecord] = field(default_factory=list)
    partitions: list[PartitionRecord] = field(default_factory=list)
    queries: list[QueryRecord] = field(default_factory=list)

    def plan(self) -> dict:
        """The plan's fields that make the edge skip what is recorded."""
        done: dict[str, list[tuple[int | str, int]]] = {}
        for run, unit, repeat in sorted(self.keys, key=lambda key: (key[0], str(key[1]), key[2])):
            done.setdefault(run, []).append((unit, repeat))
        return {"done": done, "profiled": sorted({row["run"] for row in self.layer_rows})}


def check_resumable(folder: ResultsFolder, loaded: LoadedManifest) -> None:
    """The folder was made by a sweep of this very manifest (same text after rendering)."""
    if not folder.manifest.is_file():
        raise BadInput(f"--resume {folder.path}: no {folder.manifest.name} there; expected a folder a sweep wrote")
    before = folder.manifest.read_text(encoding="utf-8")
    now = loaded.rendered.text if loaded.rendered.text.endswith("\n") else loaded.rendered.text + "\n"
    if before != now:
        changed = [
            line
            for line in difflib.unified_diff(before.splitlines(), now.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        raise BadInput(
            f"--resume {folder.path}: the manifest renders differently from {folder.manifest} "
            f"({'; '.join(changed[:4])}); expected the same manifest and --set values as the sweep being resumed"
        )


def recover(inventory: Path, variables: dict) -> None:
    """Collect what the hosts still hold, then tear down whatever the stopped sweep left running."""
    result = run_playbook("recover", inventory, variables)
    if not result.ok:
        reason = str(result.failures[0]) if result.failures else f"status {result.status}"
        raise ExperimentFailed(
            f"resume could not collect and clean up what the stopped sweep left ({reason}); "
            "nothing was run and the folder is unchanged apart from the collected spools"
        )


def recorded(folder: ResultsFolder) -> Recorded:
    """The keys of the rows already recorded (a CSV a crash left is made into parquet first), the
    per-layer timings and the failures already kept."""
    found = Recorded()
    if folder.records_csv.is_file():
        rows = with_pipeline(pd.read_parquet(convert_records(folder)))
        found.keys = {
            record_key(str(run), int(cut), str(pipeline), int(repeat))
            for run, cut, pipeline, repeat in rows[["run", "cut", "pipeline", "repeat"]].values
        }
    if folder.layers.is_file():
        found.layer_rows = pd.read_parquet(folder.layers).to_dict("records")
    found.hops = read_hops(folder)
    found.partitions = read_records(folder.uploads, PartitionRecord)
    found.queries = read_records(folder.queries, QueryRecord)
    found.keys |= {upload_key(part.run, part.repeat) for part in found.partitions}
    if folder.failures.is_file():
        rows = pd.read_csv(
            folder.failures, dtype={"run": str, "model": str, "error": str, "pipeline": str}, keep_default_na=False
        )
        found.failure_keys = {failure_key(FailedInference(**row)) for row in rows.to_dict("records")}
    return found


def failure_key(failure: FailedInference) -> tuple:
    """The same failure reaches the controller twice (stream and spool); this tells them apart."""
    return (failure.run, failure.cut, failure.pipeline, failure.repeat, failure.attempt, failure.at_ns)
