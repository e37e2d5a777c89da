"""How the split engine's results are shown: rich tables for people, plain dicts for ``--json``."""

from collections import Counter
from dataclasses import asdict

from rich.table import Table

from harness.console import make_table
from harness.energy.layers import LayerEnergy
from harness.model.graph import Cut, SplitGraph
from harness.model.profile import ProfileReport
from harness.model.verify import VerifyReport


def cut_record(cut: Cut) -> dict:
    record = asdict(cut)
    record["live"] = [asdict(crossing) for crossing in cut.live]
    record["tensors"] = sum(crossing.kind == "tensor" for crossing in cut.live)
    record["single_tensor"] = cut.single_tensor
    return record


def split_record(split: SplitGraph) -> dict:
    return {
        "model": split.name,
        "granularity": str(split.granularity),
        "input_shape": list(split.input_shape),
        "tracer": split.tracer,
        "positions": split.positions,
        "withheld": [{"cut": index, "live": live} for index, live in split.withheld.items()],
        "cuts": [cut_record(cut) for cut in split.cuts],
    }


def withheld_line(split: SplitGraph) -> str | None:
    """How many cut positions are never offered and why, or None when every position is a cut."""
    if not split.withheld:
        return None
    values = Counter(split.withheld.values())
    reasons = ", ".join(f"{live} at {count}" for live, count in values.most_common())
    return (
        f"{len(split.withheld)} of {split.positions} cut positions withheld: a value that cannot be sent "
        f"is live there ({reasons})"
    )


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.1f} {unit}"
    return f"{nbytes} B"


def _crossing_text(cut: Cut) -> str:
    return "\n".join(f"{c.name} {'x'.join(map(str, c.shape)) or 'scalar'} {c.dtype}" for c in cut.live)


def cut_table(split: SplitGraph) -> Table:
    shape = ",".join(map(str, split.input_shape))
    withheld = withheld_line(split)
    table = make_table(
        f"{split.name}: {len(split.cuts)} cuts at {split.granularity} granularity, input {shape}"
        + (f"\n{withheld}" if withheld else ""),
        [
            "cut>",
            "after",
            "op",
            "crossing (name shape dtype)",
            "bytes>",
            "edge params>",
            "cloud params>",
            "layer MFLOPs>",
        ],
    )
    for cut in split.cuts:
        table.add_row(
            str(cut.index),
            cut.after,
            cut.op,
            _crossing_text(cut),
            f"{cut.bytes:,}",
            _size(cut.edge_param_bytes),
            _size(cut.cloud_param_bytes),
            f"{cut.flops / 1e6:,.1f}",
        )
    return table


def verify_record(report: VerifyReport, split: SplitGraph) -> dict:
    return {
        "model": report.model,
        "granularity": report.granularity,
        "checked": len(report.checks),
        "failed": [asdict(check) for check in report.failures],
        "max_abs_diff": max((check.max_abs_diff for check in report.checks), default=0.0),
        "positions": split.positions,
        "withheld": len(split.withheld),
        "input_independent": report.input_independent,
    }


def verify_lines(report: VerifyReport, split: SplitGraph) -> list[str]:
    checked = len(report.checks)
    lines = []
    if not report.failures:
        largest = max((check.max_abs_diff for check in report.checks), default=0.0)
        lines.append(
            f"verified {checked} cuts of {report.model} at {report.granularity} granularity: "
            f"tail(head(x)) matches the unsplit output at every cut (largest difference {largest:.3g})"
        )
    for check in report.failures:
        cut = split.cut(check.cut)
        detail = check.error or f"max |difference| {check.max_abs_diff:.3g} > bound {check.bound:.3g}"
        lines.append(f"cut {check.cut} (after {cut.after}): {detail}")
    if report.failures:
        lines.append(f"{len(report.failures)} of {checked} cuts of {report.model} failed verification")
    withheld = withheld_line(split)
    if withheld:
        lines.append(withheld)
    if report.input_independent:
        lines.append(
            "warning: the output does not depend on the input (two different inputs gave the same output), "
            "so matching it proves little: give trained weights (--weights) or a model whose output varies"
        )
    return lines


def profile_record(report: ProfileReport, energy: list[LayerEnergy] | None = None) -> dict:
    joules = {layer.index: layer for layer in energy or ()}
    return {
        "model": report.model,
        "granularity": report.granularity,
        "cut": report.cut,
        "device": report.device,
        "threads": report.threads,
        "repeats": report.repeats,
        "total_median_ms": report.total_median_ms,
        "layers": [
            asdict(layer) | ({"joules": joules[layer.index].joules} if layer.index in joules else {})
            for layer in report.layers
        ],
    }


def profile_table(report: ProfileReport, energy: list[LayerEnergy] | None = None) -> Table:
    total = report.total_median_ms or 1.0
    joules = {layer.index: layer.joules for layer in energy or ()}
    caption = f"sum of layer medians {report.total_median_ms:.2f} ms"
    if energy:
        caption += f"; of layer energies {1e3 * sum(joules.values()):.2f} mJ (the host's, idle power included)"
    table = make_table(
        f"{report.model}: per-layer latency on {report.device}, {report.repeats} runs, {report.threads} thread(s),"
        f" cut {report.cut}",
        ["layer>", "name", "op", "side", "median ms>", "p95 ms>", "share>"] + (["mJ>"] if energy else []),
        caption,
    )
    for layer in report.layers:
        table.add_row(
            str(layer.index),
            layer.name,
            layer.op,
            layer.side,
            f"{layer.median_ms:.3f}",
            f"{layer.p95_ms:.3f}",
            f"{100 * layer.median_ms / total:.1f}%",
            *([f"{1e3 * joules[layer.index]:.3f}"] if energy else []),
        )
    return table
