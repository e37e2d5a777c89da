"""What ``harness plan --upload`` prints: per run, one row per plan (partitions, the largest one's
share, when the upload ends, queries before it ends as predicted and, with ``--simulate``, as
replayed), then each plan's partitions with when they are up and what a query costs from then on."""

from rich.table import Table

from harness.console import make_table
from harness.partition.upload.planning import UploadPlanned
from harness.wire.link import rate_label


def upload_table(title: str, items: list[UploadPlanned]) -> Table:
    simulated = any(item.simulated is not None for item in items)
    columns = ["plan", "partitions>", "largest>", "upload s>", "queries>"]
    if simulated:
        columns += ["simulated>", "simulated s>"]
    columns.append("decision ms>")
    chain = items[0].chain
    caption = (
        f"{len(chain)} units ({len(chain.costly)} carry weights), link {rate_label(chain.rate * 1e3)}; "
        "queries: back to back, finished before the upload ends"
    )
    notes = sorted({item.note for item in items if item.note})
    table = make_table(title, columns, caption="; ".join([caption, *notes]))
    for item in items:
        timeline = item.planned.timeline
        cells = [
            item.run.upload.plans[0].label,
            str(len(timeline.stages)),
            f"{100 * timeline.largest_share:.1f}%",
            f"{timeline.upload_end_ms / 1e3:,.2f}",
            str(timeline.queries_before_end(item.run.upload.first_query)),
        ]
        if simulated:
            replay = item.simulated
            cells += [str(replay.queries_before_end()), f"{replay.upload_end_ms / 1e3:,.2f}"] if replay else ["-", "-"]
        cells.append(f"{item.planned.decision_ns / 1e6:.3f}")
        table.add_row(*cells)
    return table


def partition_lines(item: UploadPlanned) -> list[str]:
    timeline = item.planned.timeline
    chain = item.chain
    lines = [f"{item.run.id}: before any partition {timeline.initial_ms:,.1f} ms a query"]
    for stage in timeline.stages:
        names = [chain.units[index].name for index in stage.units]
        shown = names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]} ({len(names)} units)"
        lines.append(
            f"  {stage.number}. {shown}: {stage.param_bytes / 1e6:,.2f} MB, up at {stage.done_ms / 1e3:,.2f} s, "
            f"then {stage.latency_ms:,.1f} ms a query"
        )
    return lines


def upload_record(item: UploadPlanned) -> dict:
    timeline = item.planned.timeline
    upload = item.run.upload
    record = {
        "run": item.run.id,
        "plan": upload.plans[0].label,
        "units": [unit.name for unit in item.chain.units],
        "partitions": [
            {
                "units": [item.chain.units[index].name for index in stage.units],
                "bytes": stage.param_bytes,
                "done_ms": stage.done_ms,
                "latency_ms": stage.latency_ms,
            }
            for stage in timeline.stages
        ],
        "initial_ms": timeline.initial_ms,
        "upload_end_ms": timeline.upload_end_ms,
        "largest_share": timeline.largest_share,
        "queries_before_end": timeline.queries_before_end(upload.first_query),
        "decision_ms": item.planned.decision_ns / 1e6,
    }
    if item.simulated is not None:
        record["simulated"] = {
            "queries_before_end": item.simulated.queries_before_end(),
            "upload_end_ms": item.simulated.upload_end_ms,
            "acked_ms": list(item.simulated.acked_ms),
        }
    return record
