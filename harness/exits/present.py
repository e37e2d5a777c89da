"""An exit plan as a table for people, or as JSON for scripts."""

from dataclasses import asdict

from rich.table import Table

from harness.console import make_table
from harness.exits.resolve import ExitPlan


def exit_plan_table(plan: ExitPlan, memory: dict[str, tuple[int, int]] | None = None) -> Table:
    """``memory``: per part, the bytes of its layers and of its exits (``ProgressiveModel.memory``)."""
    table = make_table(
        f"{plan.model}: split by {plan.rule.describe()}: cut {plan.cut} after {plan.after} "
        f"({plan.param_share:.1%} of the parameter bytes on the edge)",
        ["part", "exit>", "position>", "cut>", "after", "FLOPs up to it>", "parameters up to it>"],
        caption="position: on the part's axis before snapping to a cut where one tensor crosses"
        + "".join(
            f"\n{part} part: {layers / 1e6:,.2f} MB of parameters and buffers, exits {exits / 1e6:,.3f} MB"
            for part, (layers, exits) in (memory or {}).items()
        ),
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


def exit_plan_record(plan: ExitPlan, memory: dict[str, tuple[int, int]] | None = None) -> dict:
    record = asdict(plan)
    if memory is not None:
        record["memory"] = {
            part: {"layers_bytes": layers, "exits_bytes": exits} for part, (layers, exits) in memory.items()
        }
    return record


def trained_table(trained) -> Table:
    """``trained``: a ``TrainedModel``; every exit's accuracy, then the final classifier's."""
    parts = list(trained.accuracy)
    caption = "each as if every sample reached it; the final classifier is the backbone's own"
    chosen = trained.selection
    if chosen is not None:
        thresholds = ", ".join(f"{value:g}" for value in chosen.thresholds)
        leaving = ", ".join(f"{share:.0%}" for share in chosen.test.shares)
        caption += (
            f"\nthresholds picked on validation within {chosen.max_accuracy_drop:g} of the final classifier: "
            f"{thresholds}; on test: accuracy {chosen.test.accuracy:.3f} (final classifier "
            f"{chosen.final_test:.3f}), samples leaving at each exit then the final classifier: {leaving}"
        )
    table = make_table(
        f"{trained.model}: {trained.placement} exits trained on {trained.dataset} in {trained.seconds:.1f} s, "
        f"in {trained.folder}",
        ["classifier", *(f"{part} accuracy>" for part in parts)],
        caption=caption,
    )
    for number, name in enumerate([*trained.exits, "final classifier"]):
        table.add_row(name, *(f"{trained.accuracy[part][number]:.3f}" for part in parts))
    return table
