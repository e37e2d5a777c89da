"""Benchmark results as tables."""

from rich.table import Table

from harness.bench.split import TARGET_OVERHEAD, SplitCost
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
