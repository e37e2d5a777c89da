"""Benchmark results as tables."""

from rich.table import Table

from harness.bench.partition import DecisionCost
from harness.bench.placement import DP_TARGET_BYTES, DP_TARGET_S, PlacementRow
from harness.bench.regress import RepeatVerdict
from harness.bench.split import TARGET_OVERHEAD, SplitCost
from harness.bench.wire import IN_TURNS, TARGET_METHOD, TARGET_RATIO, WireRow, size_label, target_row
from harness.console import make_table


def split_cost_table(rows: list[SplitCost], repeats: int, threads: int) -> Table:
    table = make_table(
        f"head+tail against unsplit forward: median of {repeats}, {threads} thread(s)",
        ["model", "cut>", "after", "unsplit ms>", "head+tail ms>", "paired overhead>", ""],
        f"paired overhead: median over {repeats} pairs of head+tail / unsplit run side by side; "
        f"target at most {100 * TARGET_OVERHEAD:.0f}% more",
    )
    for row in rows:
        table.add_row(
            row.model,
            str(row.cut),
            row.after,
            f"{row.unsplit_ms:.2f}",
            f"{row.split_ms:.2f}",
            f"{100 * row.overhead:+.2f}%",
            "ok" if row.within_target else "OVER",
        )
    return table


def wire_cost_table(rows: list[WireRow], repeats: int, warmup: int) -> Table:
    target = target_row(rows)
    table = make_table(
        f"tensor round trip over loopback: median of {repeats} after {warmup} warm-up, 1 torch thread",
        ["method", "size>", "median us>", "p95 us>", "x raw>", "wire bytes>", ""],
        "client -> server process -> client on 127.0.0.1; tensor: float32 torch.relu(torch.randn(n)), half zeros "
        "like activations after a ReLU; x raw: median / raw-bytes median at the same size; wire bytes: one "
        f"direction, header included; target: {TARGET_METHOD} at the largest size at most {TARGET_RATIO}x raw "
        f"({' and '.join(IN_TURNS)} timed in turns)",
    )
    for row, following in zip(rows, [*rows[1:], None], strict=True):
        verdict = ""
        if row is target:
            verdict = "ok" if row.ratio_to_raw <= TARGET_RATIO else "OVER"
        table.add_row(
            row.method,
            size_label(row.size),
            f"{row.median_us:,.1f}",
            f"{row.p95_us:,.1f}",
            f"{row.ratio_to_raw:.2f}x",
            f"{row.wire_bytes:,}",
            verdict,
            end_section=following is not None and following.size != row.size,
        )
    return table


def decision_cost_table(rows: list[DecisionCost], repeats: int) -> Table:
    table = make_table(
        f"partitioner decision time: median of {repeats}",
        ["model", "partitioner", "layers>", "cuts>", "median ms>", "p95 ms>", "target ms>", ""],
        "from profiles already in hand (made up from each layer's FLOPs); partitioners at node granularity, "
        "upload planners on the units between single-tensor cuts at module granularity (cuts: units)",
    )
    for row in rows:
        table.add_row(
            row.model,
            row.partitioner,
            str(row.layers),
            str(row.cuts),
            f"{row.median_ms:.3f}",
            f"{row.p95_ms:.3f}",
            f"{row.target_ms:g}" if row.target_ms is not None else "-",
            ("ok" if row.within_target else "OVER") if row.target_ms is not None else "",
        )
    return table


def false_alarm_table(rows: list[RepeatVerdict], tolerance: float, alpha: float) -> Table:
    table = make_table(
        f"false alarms of harness regress: {len(rows)} unchanged repeats against one baseline",
        ["repeat>", "folder", "cuts>", "flagged>", "worst ratio>", "min p-value>"],
        f"flagged: cuts slower at alpha {alpha:g} (one-sided Mann-Whitney U) and by more than "
        f"{100 * tolerance:g}% on the median, or missing; worst ratio: the largest repeat / baseline median of "
        "end-to-end time; min p-value: over the cuts whose median grew",
    )
    for row in rows:
        table.add_row(
            str(row.repeat),
            str(row.folder),
            str(row.cuts),
            str(row.flagged),
            "-" if row.worst_ratio is None else f"{row.worst_ratio:.3f}x",
            "-" if row.min_p_value is None else f"{row.min_p_value:.2g}",
            style="bold red" if row.flagged else None,
        )
    return table


def placement_table(rows: list[PlacementRow], chain: str, segments: int, seeds: int) -> Table:
    table = make_table(
        f"placement strategies on addnn's IoT/edge/cloud scenario: {chain}, {segments} segments, seeds 0..{seeds - 1}",
        ["hosts>", "strategy", "solve s>", "peak MiB>", "latency ms>", "worst ratio>", "generations>", "status", ""],
        "solve s: median over seeds; peak MiB: largest Python allocation peak while solving; latency: mean predicted; "
        "worst ratio: the largest over seeds of latency / dp's (dp is exact); "
        f"target: dp at most {DP_TARGET_S:g} s and {DP_TARGET_BYTES >> 30} GiB",
    )
    for row, following in zip(rows, [*rows[1:], None], strict=True):
        verdict = {None: "", True: "ok", False: "OVER"}[row.within_target]
        table.add_row(
            str(row.hosts),
            row.strategy,
            f"{row.solve_s:.4f}",
            f"{row.peak_bytes / 2**20:.1f}",
            "-" if row.latency_s is None else f"{1e3 * row.latency_s:,.1f}",
            "-" if row.ratio is None else f"{row.ratio:.4f}",
            "-" if row.generations is None else f"{row.generations:.0f}",
            row.statuses,
            verdict,
            end_section=following is not None and following.hosts != row.hosts,
        )
    return table
