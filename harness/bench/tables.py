"""Benchmark results as tables."""

from rich.table import Table

from harness.bench.split import TARGET_OVERHEAD, SplitCost


def split_cost_table(rows: list[SplitCost], repeats: int, threads: int) -> Table:
    table = Table(
        title=f"head+tail against unsplit forward: median of {repeats}, {threads} thread(s)",
        caption=f"target: at most {100 * TARGET_OVERHEAD:.0f}% more than unsplit",
    )
    for column, justify in [
        ("model", "left"),
        ("cut", "right"),
        ("after", "left"),
        ("unsplit ms", "right"),
        ("head+tail ms", "right"),
        ("overhead", "right"),
        ("", "left"),
    ]:
        table.add_column(column, justify=justify)
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
