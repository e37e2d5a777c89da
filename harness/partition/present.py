"""What ``harness plan`` prints: per run, the predicted latency of every cut by each partitioner
with the picks marked, then one line per partitioner; or all of it as JSON."""

from rich.table import Table

from harness.console import make_table
from harness.partition.evaluate import Judged
from harness.wire.link import rate_label


def plan_table(judged: Judged) -> Table:
    names = [row["partitioner"] for row in judged.rows]
    picks = {row["partitioner"]: row["cut"] for row in judged.rows}
    situation = judged.situation
    measured = situation.measured_ms
    columns = ["cut>", "layer", "bytes>", *(f"{name} ms>" for name in names if name != "oracle")]
    if measured:
        columns.append("measured ms>")
    columns.append("picked by")
    link = situation.link
    table = make_table(
        f"{judged.run}: predicted end-to-end latency per cut",
        columns,
        caption=f"link {rate_label(link.rate)}, delay {link.delay_s * 1e3:g} ms; profiles per layer of both hosts",
    )
    predicted = {}
    for row in judged.predictions:
        predicted.setdefault(row["partitioner"], {})[row["cut"]] = row["predicted_ms"]
    layer_after = {cut.index: cut.after for cut in situation.split.cuts}
    for cut in situation.cuts:
        cells = [str(cut), layer_after[cut], f"{situation.cut_bytes[cut]:,}"]
        cells += [f"{predicted[name][cut]:,.2f}" for name in names if name != "oracle"]
        if measured:
            cells.append(f"{measured[cut]:,.2f}" if cut in measured else "-")
        cells.append(", ".join(name for name, pick in picks.items() if pick == cut))
        table.add_row(*cells)
    return table


def decision_lines(judged: Judged) -> list[str]:
    lines = []
    for row in judged.rows:
        line = f"{judged.run}: {row['partitioner']} picks cut {row['cut']} ({row['layer']})"
        if row["predicted_ms"] is not None:
            line += f", predicted {row['predicted_ms']:,.2f} ms"
        if row["argmin"] != row["cut"]:
            line += f"; its predictions rank cut {row['argmin']} best"
            if row["argmin_regret"] is not None:
                line += f" (regret {row['argmin_regret']:.3f})"
        if row["regret"] is not None:
            line += f"; measured {row['measured_ms']:,.2f} ms, regret {row['regret']:.3f}"
            if row.get("p_slower") is not None:
                line += f" (p slower {row['p_slower']:.2g})"
        line += f" [{row['decision_us']:,.0f} µs]"
        if row["note"]:
            line += f" ({row['note']})"
        lines.append(line)
    return lines


def plan_record(judged: Judged) -> dict:
    return {"run": judged.run, "decisions": judged.rows, "predictions": judged.predictions}
