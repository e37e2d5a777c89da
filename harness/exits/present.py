"""An exit plan as a table for people, or as JSON for scripts."""

from dataclasses import asdict

from rich.table import Table

from harness.console import make_table
from harness.exits.resolve import ExitPlan


def exit_plan_table(plan: ExitPlan) -> Table:
    rule = plan.rule
    bound = f", {rule.bound.replace('_', ' ')}" if rule.by == "memory" else ""
    table = make_table(
        f"{plan.model}: split by {rule.by} at {rule.fraction:g}{bound}: cut {plan.cut} after {plan.after} "
        f"({plan.param_share:.1%} of the parameter bytes on the edge)",
        ["part", "exit>", "position>", "cut>", "after", "FLOPs up to it>", "parameters up to it>"],
        caption="position: on the part's axis before snapping to a cut where one tensor crosses",
    )
    for item in plan.exits:
        table.add_row(
            item.part,
            str(item.number),
            f"{item.position:,.3f}",
            str(item.cut),
            item.after,
            f"{item.flops_share:.1%}",
            f"{item.param_share:.1%}",
        )
    return table


def exit_plan_record(plan: ExitPlan) -> dict:
    return asdict(plan)
