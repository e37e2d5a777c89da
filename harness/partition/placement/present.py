"""What ``harness place`` prints: per run, each strategy's pipeline and prediction with its gap to
the optimum, then the stages of the chosen one (the manifest's placement, else ``dp``); or all of
it as JSON."""

from rich.table import Table

from harness.console import make_table
from harness.partition.placing import Placed, PlacedRun


def placement_table(found: PlacedRun) -> Table:
    unit = "ms" if found.objective == "latency" else "ms per inference (slowest stage)"
    table = make_table(
        f"{found.run}: {found.model} over {', '.join(host.name for host in found.instance.hosts)}",
        ["strategy", "status", f"predicted {unit}>", "vs dp>", "solve ms>", "pipeline"],
        caption=f"objective {found.objective}; links {found.instance.links}; * the manifest's placement",
    )
    for placed in found.placed:
        found_placement = placed.placement
        if found_placement is None:
            table.add_row(placed.strategy, "skipped", "-", "-", "-", placed.skipped)
            continue
        feasible = found_placement.feasible
        table.add_row(
            placed.strategy + (" *" if placed.chosen else ""),
            found_placement.status,
            f"{found_placement.value_s * 1e3:,.2f}" if feasible else "-",
            f"{placed.gap:+.1%}" if placed.gap is not None else "-",
            f"{found_placement.solve_s * 1e3:,.1f}",
            pipeline_text(found, placed) if feasible else "no feasible placement",
        )
    return table


def pipeline_text(found: PlacedRun, placed: Placed) -> str:
    """``rpi-1 to 3 | jetson-1 3 to 13 | gpu-1 13 to output``: who runs which cut range."""
    source = found.instance.hosts[found.instance.problem.source].name
    ends = [*placed.cuts, None]
    first = ends[0]
    parts = [f"{source} sends the input" if first == 0 else f"{source} to {first if first is not None else 'output'}"]
    for worker, start, end in zip(placed.workers, placed.cuts, ends[1:], strict=True):
        parts.append(f"{worker} {start} to {end if end is not None else 'output'}")
    return " | ".join(parts)


def stages_table(found: PlacedRun) -> Table | None:
    """The chosen placement's stages with their predicted milliseconds."""
    chosen = next((placed for placed in found.placed if placed.chosen), None)
    chosen = chosen or next((placed for placed in found.placed if placed.strategy == "dp"), None)
    if chosen is None or not chosen.stages:
        return None
    cuts = found.instance.cuts
    table = make_table(
        f"{found.run}: stages of {chosen.strategy}", ["stage", "hosts", "cuts", "predicted ms>"], caption=None
    )
    for stage in chosen.stages:
        milliseconds = f"{stage.seconds * 1e3:,.2f}"
        if stage.kind == "compute":
            table.add_row("compute", stage.frm, f"{cuts[stage.first]} to {cuts[stage.last]}", milliseconds)
        else:
            table.add_row("hop", f"{stage.frm} -> {stage.to}", f"at {cuts[stage.first]}", milliseconds)
    return table


def placement_records(found: PlacedRun) -> list[dict]:
    return [
        {
            "run": found.run,
            "model": found.model,
            "objective": found.objective,
            "strategy": placed.strategy,
            "chosen": placed.chosen,
            "status": placed.placement.status if placed.placement else "skipped",
            "skipped": placed.skipped,
            "predicted_ms": placed.placement.value_s * 1e3
            if placed.placement is not None and placed.placement.feasible
            else None,
            "gap_to_dp": placed.gap,
            "solve_ms": placed.placement.solve_s * 1e3 if placed.placement else None,
            "bound_ms": placed.placement.bound_s * 1e3
            if placed.placement is not None and placed.placement.bound_s is not None
            else None,
            "cuts": list(placed.cuts),
            "workers": list(placed.workers),
            "stages": [
                {
                    "kind": stage.kind,
                    "from": stage.frm,
                    "to": stage.to,
                    "first_cut": found.instance.cuts[stage.first],
                    "last_cut": found.instance.cuts[stage.last],
                    "ms": stage.seconds * 1e3,
                }
                for stage in placed.stages
            ],
        }
        for placed in found.placed
    ]
