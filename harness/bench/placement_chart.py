"""Seed 003's Fig. 1 from ``harness bench placement``: solve time and latency against host count,
one line per strategy, drawn the way the run figures are (Agg canvas, Okabe-Ito colours)."""

from pathlib import Path

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.bench.placement import PlacementRow
from harness.results.charts import DPI, HEIGHT_PX, STYLE, WIDTH_PX

COLOURS = ("#000000", "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9")
MARKERS = ("o", "s", "D", "^", "v", "P", "X")


def placement_chart(rows: list[PlacementRow], chain: str, path: Path) -> Path:
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        timing, latency = figure.subplots(1, 2)
        strategies = list(dict.fromkeys(row.strategy for row in rows))
        for strategy, colour, marker in zip(strategies, COLOURS, MARKERS, strict=False):
            mine = [row for row in rows if row.strategy == strategy]
            style = {"color": colour, "marker": marker, "label": strategy}
            timing.plot([row.hosts for row in mine], [row.solve_s for row in mine], **style)
            priced = [row for row in mine if row.latency_s is not None]
            latency.plot([row.hosts for row in priced], [row.latency_s for row in priced], **style)
        for axes, label in ((timing, "solve time (s, median over seeds)"), (latency, "predicted latency (s, mean)")):
            axes.set_xscale("log")
            axes.set_yscale("log")
            axes.set_xlabel("hosts (a third IoT, a third edge, the rest cloud)")
            axes.set_ylabel(label)
            axes.grid(alpha=0.3, which="both")
        latency.legend()
        figure.suptitle(f"placing {chain} on addnn's IoT/edge/cloud scenario")
        figure.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    return path
