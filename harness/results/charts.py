"""The figures of a run, drawn like the seed papers' "total inference time by split layer".

Figures are drawn on the Agg canvas directly, never through pyplot: no display is needed, no global
figure registry grows during a long sweep, and drawing is safe from any thread. Colours are the
Okabe-Ito palette, which stays distinguishable under every common colour-vision deficiency.
"""

import itertools
from pathlib import Path

import matplotlib as mpl
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

from harness.results.summary import RunInfo

WIDTH_PX, HEIGHT_PX, DPI = 1600, 900, 100
COLOURS = {"edge": "#0072B2", "transfer": "#E69F00", "cloud": "#009E73"}
BYTES_COLOURS = {"bytes_raw": "#0072B2", "bytes_wire": "#E69F00"}
ENERGY_HOSTS = {"edge_mj_median": "edge", "cloud_mj_median": "cloud"}
RELPOS = {"left": 0.0, "center": 0.5, "right": 1.0}
"""Where an arrow leaves its label, by the label's alignment: straight down from the aligned end."""
HIGHLIGHT = "#D55E00"
PALETTE = ("#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#000000")
"""One colour per series where series are many (pipelines); Okabe-Ito, the highlight left out."""
PICK_MARKER = {"s": 150, "edgecolors": "black", "linewidths": 0.8}
PICK_STYLES = (("v", "#000000"), ("D", "#CC79A7"), ("s", "#56B4E9"), ("^", "#F0E442"), ("P", "#999999"))
STYLE = {
    "font.size": 13,
    "axes.titlesize": 13,
    "axes.labelsize": 14,
    "legend.fontsize": 12,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_PNG_METADATA = {"Software": None}


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    return figure, axes


def _cut_axis(axes: Axes, rows: pd.DataFrame) -> None:
    """One tick per cut, labelled "index layer"; labels shrink as cuts multiply so none overlap."""
    count = len(rows)
    size = 12 if count <= 25 else 9 if count <= 50 else 7 if count <= 80 else 5
    axes.set_xticks(range(count))
    axes.set_xticklabels(
        [f"{cut} {layer}" for cut, layer in zip(rows["cut"], rows["layer"], strict=True)],
        rotation=55 if count <= 40 else 90,
        ha="right" if count <= 40 else "center",
        rotation_mode="anchor" if count <= 40 else "default",
        fontsize=size,
    )
    axes.set_xlim(-0.6, count - 0.4)
    axes.set_xlabel("split layer (cut index and the last layer run on the edge)")


def _subtitle(info: RunInfo, rows: pd.DataFrame) -> str:
    low, high = int(rows["n"].min()), int(rows["n"].max())
    counts = f"n = {low}" if low == high else f"n = {low}-{high}"
    return f"{info.caption()} · medians per cut, {counts} · run {info.run}"


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI, format="png", metadata=_PNG_METADATA)
    return path


def time_by_cut(
    rows: pd.DataFrame, info: RunInfo, best_cut: int, path: Path, picks: dict[str, int] | None = None
) -> Path:
    """Stacked median edge, transfer and cloud time per cut; the marker is the median end-to-end time.

    Medians of the parts need not add up to the median total, and encoding and decoding on the edge are
    in the total only, so the total is drawn as its own marker instead of being implied by the stack.
    Each partitioner's pick (``picks``: name to cut) is a marker of its own above its cut's bar, as
    the seed's figure numbers the layer its partitioner chose.
    """
    with mpl.rc_context(STYLE):
        return _save(time_by_cut_figure(rows, info, best_cut, picks), path)


def time_by_cut_figure(rows: pd.DataFrame, info: RunInfo, best_cut: int, picks: dict[str, int] | None = None) -> Figure:
    """The figure ``time_by_cut`` saves (drawn under ``STYLE``)."""
    rows = rows.sort_values("cut").reset_index(drop=True)
    figure, axes = _figure()
    bottom = _stacked(axes, rows)
    best = int(rows.index[rows["cut"] == best_cut][0])
    best_total = float(rows.loc[best, "total_ms_median"])
    top = float(max(bottom.max(), rows["total_ms_median"].max()))
    pick_labels = _mark_picks(axes, rows, bottom, top, picks or {})
    axes.annotate(
        f"best: cut {best_cut} ({rows.loc[best, 'layer']})\n{best_total:,.1f} ms",
        xy=(best, max(best_total, float(bottom[best]))),
        xytext=(0, 42 + 24 * sum(1 for cut in (picks or {}).values() if cut == best_cut)),
        textcoords="offset points",
        ha=_inward(best, len(rows)),
        color=HIGHLIGHT,
        fontweight="bold",
        arrowprops={"arrowstyle": "-|>", "color": HIGHLIGHT, "lw": 2},
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": HIGHLIGHT, "alpha": 0.92},
        zorder=5,
    )
    axes.set_ylim(0, top * (1.18 + 0.06 * len(pick_labels)))
    _cut_axis(axes, rows)
    label = axes.get_xticklabels()[best]
    label.set_color(HIGHLIGHT)
    label.set_fontweight("bold")
    axes.set_ylabel("time (ms)")
    axes.yaxis.set_major_formatter("{x:,.0f}")
    axes.set_title(_subtitle(info, rows), loc="left", color="#333333")
    figure.suptitle("Total inference time by split layer", fontsize=19, fontweight="bold", x=0.01, ha="left")
    handles, labels = axes.get_legend_handles_labels()
    order = [labels.index(label) for label in (*COLOURS, "end-to-end (median)", *pick_labels)]
    figure.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside upper right", ncols=4)
    return figure


def _stacked(axes: Axes, rows: pd.DataFrame, horizontal: bool = False, cloud: str = "cloud") -> pd.Series:
    """Each row's median edge, transfer and cloud time stacked in a bar (``cloud`` names the last
    part in the legend), and its median end-to-end time as a marker of its own; the stacks' ends."""
    positions = range(len(rows))
    end = pd.Series(0.0, index=rows.index)
    for part, colour in COLOURS.items():
        size = rows[f"{part}_ms_median"]
        name = cloud if part == "cloud" else part
        if horizontal:
            axes.barh(positions, size, 0.6, left=end, color=colour, label=name, edgecolor="white")
        else:
            axes.bar(positions, size, 0.72, bottom=end, color=colour, label=name, edgecolor="white")
        end = end + size
    totals = rows["total_ms_median"]
    axes.scatter(
        *((totals, positions) if horizontal else (positions, totals)),
        marker="|" if horizontal else "_",
        s=600 if horizontal else 260,
        linewidths=3 if horizontal else 2.5,
        color="black",
        zorder=4 if horizontal else 3,
        label="end-to-end (median)",
    )
    return end


def _inward(position: int, count: int) -> str:
    """How to align a label over bar ``position`` of ``count`` so that it stays inside the axes: a
    label centred over one of the outer bars would run past the edge (the best cut is often the last)."""
    if count > 2 and position >= count - 2:
        return "right"
    if count > 2 and position <= 1:
        return "left"
    return "center"


def _mark_picks(axes: Axes, rows: pd.DataFrame, bottom: pd.Series, top: float, picks: dict[str, int]) -> list[str]:
    """A marker per partitioner above the cut it picked, stacked where several picked the same cut."""
    labels = []
    stacked: dict[int, int] = {}
    for (name, cut), (marker, colour) in zip(picks.items(), itertools.cycle(PICK_STYLES)):
        matches = rows.index[rows["cut"] == cut]
        if len(matches) == 0:
            continue
        position = int(matches[0])
        level = stacked.get(position, 0)
        stacked[position] = level + 1
        height = max(float(bottom[position]), float(rows.loc[position, "total_ms_median"]))
        label = f"{name}: cut {cut}"
        axes.scatter(
            [position],
            [height + top * (0.05 + 0.06 * level)],
            marker=marker,
            color=colour,
            zorder=6,
            label=label,
            **PICK_MARKER,
        )
        labels.append(label)
    return labels


def predicted_vs_measured(rows: pd.DataFrame, predictions: pd.DataFrame, info: RunInfo, path: Path) -> Path:
    """Each partitioner's predicted end-to-end latency per cut against the measured median."""
    rows = rows.sort_values("cut").reset_index(drop=True)
    position = {int(cut): index for index, cut in enumerate(rows["cut"])}
    with mpl.rc_context(STYLE):
        figure, axes = _figure()
        axes.plot(
            range(len(rows)),
            rows["total_ms_median"],
            color="black",
            marker="o",
            linewidth=2.2,
            label="measured (median end-to-end)",
            zorder=4,
        )
        for (name, group), (marker, colour) in zip(
            predictions.groupby("partitioner", sort=False), itertools.cycle(PICK_STYLES)
        ):
            if name == "oracle":
                continue
            group = group[group["cut"].isin(position)].sort_values("cut")
            axes.plot(
                [position[int(cut)] for cut in group["cut"]],
                group["predicted_ms"],
                color=colour,
                marker=marker,
                linestyle="--",
                linewidth=1.6,
                label=f"{name} (predicted)",
            )
        _cut_axis(axes, rows)
        axes.set_yscale("log")
        axes.yaxis.set_major_formatter("{x:,.0f}")
        axes.yaxis.set_minor_formatter("{x:,.0f}")
        axes.set_ylabel("end-to-end time (ms, log scale)")
        axes.set_title(_subtitle(info, rows), loc="left", color="#333333")
        figure.suptitle(
            "Predicted against measured latency by split layer", fontsize=19, fontweight="bold", x=0.01, ha="left"
        )
        figure.legend(loc="outside lower center", ncols=4)
        return _save(figure, path)


def bytes_by_cut(rows: pd.DataFrame, info: RunInfo, path: Path) -> Path:
    """Bytes crossing each cut, payload and on the wire, on a log scale against the raw input's size."""
    rows = rows.sort_values("cut").reset_index(drop=True)
    with mpl.rc_context(STYLE):
        figure, axes = _figure()
        width = 0.4
        for offset, (column, label) in zip(
            (-width / 2, width / 2), (("bytes_raw", "tensor payload"), ("bytes_wire", "on the wire")), strict=True
        ):
            positions = [index + offset for index in range(len(rows))]
            axes.bar(positions, rows[column], width, color=BYTES_COLOURS[column], label=label)
        axes.set_yscale("log")
        axes.yaxis.set_major_formatter(EngFormatter(unit="B", places=0))
        if info.input_bytes:
            axes.axhline(info.input_bytes, color="black", linestyle="--", linewidth=1.5, zorder=3)
            axes.set_ylim(top=max(info.input_bytes, float(rows[list(BYTES_COLOURS)].max().max())) * 2)
            axes.annotate(
                f"raw input: {info.input_bytes:,} B",
                xy=(1, info.input_bytes),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 5),
                textcoords="offset points",
                ha="right",
            )
        _cut_axis(axes, rows)
        axes.set_ylabel("bytes per inference (log scale)")
        axes.set_title(_subtitle(info, rows), loc="left", color="#333333")
        figure.suptitle("Bytes crossing the link by split layer", fontsize=19, fontweight="bold", x=0.01, ha="left")
        figure.legend(loc="outside upper right", ncols=2)
        return _save(figure, path)


def energy_by_cut(rows: pd.DataFrame, info: RunInfo, path: Path) -> Path:
    """Median energy per inference on each host by split layer, the edge's and the cloud's side by
    side (a host without a power source leaves its bars out and says so); the cut where the edge
    spends least highlighted, as Neurosurgeon's energy objective would pick it with the radio free."""
    rows = rows.sort_values("cut").reset_index(drop=True)
    with mpl.rc_context(STYLE):
        figure, axes = _figure()
        width = 0.4
        handles = []
        for offset, (column, host) in zip((-width / 2, width / 2), ENERGY_HOSTS.items(), strict=True):
            measured = rows[column].notna()
            positions = [index + offset for index in rows.index[measured]]
            axes.bar(positions, rows.loc[measured, column], width, color=COLOURS[host])
            label = host if measured.any() else f"{host}: no power source"
            fill = COLOURS[host] if measured.any() else "white"
            handles.append(Patch(facecolor=fill, edgecolor=COLOURS[host], label=label))
        _cut_axis(axes, rows)
        edge = rows["edge_mj_median"]
        if edge.notna().any():
            least = int(edge.idxmin())
            align = _inward(least, len(rows))
            tick = axes.get_xticklabels()[least]
            tick.set_color(HIGHLIGHT)
            tick.set_fontweight("bold")
            axes.annotate(
                f"least edge energy: cut {rows.at[least, 'cut']}\n{edge[least]:,.2f} mJ",
                xy=(least - width / 2, edge[least]),
                xytext=(least - width / 2, 1.1 * float(rows.loc[least, list(ENERGY_HOSTS)].max())),
                textcoords="data",
                ha=align,
                color=HIGHLIGHT,
                fontweight="bold",
                arrowprops={"arrowstyle": "-|>", "color": HIGHLIGHT, "lw": 2, "relpos": (RELPOS[align], 0.0)},
            )
        top = float(rows[list(ENERGY_HOSTS)].max().max())
        axes.set_ylim(0, top * 1.35 if top > 0 else 1)
        axes.set_ylabel("median energy per inference (mJ)")
        axes.yaxis.set_major_formatter("{x:,.1f}")
        axes.set_title(_subtitle(info, rows), loc="left", color="#333333")
        figure.suptitle("Energy per inference by split layer", fontsize=19, fontweight="bold", x=0.01, ha="left")
        figure.legend(handles=handles, loc="outside upper right", ncols=2)
        return _save(figure, path)


def comparison_by_cut(rows: pd.DataFrame, a: str, b: str, path: Path) -> Path:
    """Median end-to-end time per run and cut of two sweeps side by side, B/A written above each pair.

    ``rows`` has the columns run, cut, layer, a_ms, b_ms and ratio; a side that did not measure a cut
    leaves its bar out. With several runs, each tick names its run too.
    """
    rows = rows.sort_values(["run", "cut"]).reset_index(drop=True)
    if rows["run"].nunique() > 1:
        rows = rows.assign(layer=rows["layer"] + " · " + rows["run"])
    with mpl.rc_context(STYLE):
        figure, axes = _figure()
        width = 0.4
        for offset, column, label, colour in (
            (-width / 2, "a_ms", f"A: {a}", COLOURS["edge"]),
            (width / 2, "b_ms", f"B: {b}", COLOURS["transfer"]),
        ):
            axes.bar([index + offset for index in range(len(rows))], rows[column], width, color=colour, label=label)
        top = float(rows[["a_ms", "b_ms"]].max().max())
        for index, row in rows.iterrows():
            if pd.notna(row["ratio"]):
                height = max(row["a_ms"], row["b_ms"])
                axes.annotate(
                    f"{row['ratio']:.2f}",
                    xy=(index, height),
                    xytext=(0, 4),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    rotation=90 if len(rows) > 12 else 0,
                    fontsize=10,
                    color=HIGHLIGHT if row["ratio"] > 1 else "#333333",
                )
        axes.set_ylim(0, top * 1.22)
        _cut_axis(axes, rows)
        axes.set_ylabel("median end-to-end time (ms)")
        axes.yaxis.set_major_formatter("{x:,.0f}")
        axes.set_title(f"B/A above each pair (red: B slower) · A = {a} · B = {b}", loc="left", color="#333333")
        figure.suptitle(
            "End-to-end time by split layer: B against A", fontsize=19, fontweight="bold", x=0.01, ha="left"
        )
        figure.legend(loc="outside upper right", ncols=2)
        return _save(figure, path)


def time_by_pipeline(rows: pd.DataFrame, info: RunInfo, path: Path, placements: pd.DataFrame | None = None) -> Path:
    """Per pipeline of a sweep over tiers, stacked median edge, transfer and workers' time, the median
    end-to-end time as a marker, and each strategy's predicted latency for the pipeline it chose, so
    a prediction that was wrong, and by how much, shows at a glance. Fastest pipeline on top."""
    rows = rows.sort_values(["total_ms_median", "pipeline"], ascending=[False, True]).reset_index(drop=True)
    labels = [label.replace(">", " → ") for label in rows["pipeline"]]
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH_PX / DPI, max(5.0, 2.2 + 0.75 * len(rows))), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.grid(axis="x", alpha=0.3)
        axes.set_axisbelow(True)
        left = _stacked(axes, rows, horizontal=True, cloud="workers")
        position = {pipeline: index for index, pipeline in enumerate(rows["pipeline"])}
        chosen = placements[placements["pipeline"].isin(position)] if placements is not None else rows.iloc[0:0]
        for (strategy, group), (marker, colour) in zip(
            chosen.groupby("strategy", sort=False), itertools.cycle(PICK_STYLES)
        ):
            offsets = [position[pipeline] + 0.38 for pipeline in group["pipeline"]]
            axes.scatter(
                group["predicted_ms"],
                offsets,
                marker=marker,
                color=colour,
                zorder=5,
                label=f"{strategy} (predicted)",
                **PICK_MARKER,
            )
        axes.set_yticks(range(len(rows)))
        axes.set_yticklabels(labels, fontsize=11)
        best = axes.get_yticklabels()[len(rows) - 1]
        best.set_color(HIGHLIGHT)
        best.set_fontweight("bold")
        axes.set_xlabel("time (ms)")
        axes.xaxis.set_major_formatter("{x:,.0f}")
        right = max(float(left.max()), float(rows["total_ms_median"].max()), float(chosen["predicted_ms"].max() or 0))
        axes.set_xlim(0, right * 1.06)
        axes.set_title(_subtitle(info, rows).replace(" · medians per cut", "\nmedians per pipeline"), loc="left")
        figure.suptitle("Total inference time by pipeline", fontsize=19, fontweight="bold", x=0.01, ha="left")
        figure.legend(loc="outside lower center", ncols=4)
        return _save(figure, path)


def latency_over_time(records: pd.DataFrame, replans: pd.DataFrame, info: RunInfo, path: Path) -> Path:
    """Each inference of a run that re-plans: its end-to-end time against when it started, coloured
    by the pipeline it took, with every link event and every switch marked where it happened, so the
    cost of a link change and of the time it took to react shows as the gap between two lines."""
    start = int(records["started_at_ns"].min())
    with mpl.rc_context(STYLE):
        figure, axes = _figure()
        for (pipeline, group), colour in zip(records.groupby("pipeline", sort=False), itertools.cycle(PALETTE)):
            axes.scatter(
                (group["started_at_ns"] - start) / 1e9,
                group["e2e_ns"] / 1e6,
                s=18,
                color=colour,
                label=pipeline.replace(">", " → "),
            )
        for row in replans.itertuples():
            if row.trigger == "link event":
                _mark_time(axes, row.at_s, f"link event: {row.reason}", 14, "black", linestyle="--", linewidth=1.5)
            elif row.switched:
                _mark_time(axes, row.at_s, f"switch ({row.gain:.0%} predicted gain)", 30, HIGHLIGHT, linewidth=2)
        axes.set_yscale("log")
        axes.yaxis.set_major_formatter("{x:,.0f}")
        axes.yaxis.set_minor_formatter("{x:,.0f}")
        axes.set_xlabel("time since the run's first inference (s)")
        axes.set_ylabel("end-to-end time (ms, log scale)")
        axes.set_title(f"{info.caption()} · run {info.run}", loc="left", color="#333333")
        figure.suptitle("Latency over time, re-planned", fontsize=19, fontweight="bold", x=0.01, ha="left")
        figure.legend(loc="outside lower center", ncols=2)
        return _save(figure, path)


def _mark_time(axes: Axes, at_s: float, text: str, below: int, colour: str, **line) -> None:
    """A vertical line at ``at_s`` and its label ``below`` points under the top of the axes."""
    axes.axvline(at_s, color=colour, **line)
    axes.annotate(
        text,
        xy=(at_s, 1),
        xycoords=("data", "axes fraction"),
        xytext=(4, -below),
        textcoords="offset points",
        fontsize=10,
        color=colour,
    )


def _model_panels(count: int) -> tuple[Figure, list[Axes]]:
    """A figure of ``count`` panels stacked, one per model, each gridded (made inside the style)."""
    figure = Figure(figsize=(WIDTH_PX / DPI, max(HEIGHT_PX / DPI, 5.5 * count)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    panels = []
    for index in range(1, count + 1):
        axes = figure.add_subplot(count, 1, index)
        axes.grid(alpha=0.3)
        axes.set_axisbelow(True)
        panels.append(axes)
    return figure, panels


def exits_front(table: pd.DataFrame, path: Path) -> Path:
    """Early exits, one point per placement and threshold (labelled with it): median end-to-end time
    against error; the non-dominated points (on latency, error and cloud cost together; a point may
    be kept for its cost alone, which the report's table gives) ringed, and the profiled cloud-only
    and edge-only baselines as crosses. One panel per model."""
    models = list(dict.fromkeys(table["model"]))
    with mpl.rc_context(STYLE):
        figure, panels = _model_panels(len(models))
        for model, axes in zip(models, panels, strict=True):
            rows = table[table["model"] == model]
            measured = rows[rows["kind"] == "measured"]
            groups = measured.groupby("placement", sort=False)
            for number, ((placement, group), colour) in enumerate(zip(groups, PALETTE, strict=False)):
                axes.scatter(group["median_ms"], 100 * group["error"], s=90, color=colour, label=placement, zorder=4)
                for row in group.itertuples(index=False):
                    axes.annotate(
                        f"{row.threshold:g}",
                        (row.median_ms, 100 * row.error),
                        textcoords="offset points",
                        xytext=(8, 6 - 18 * (number % 2)),
                        fontsize=10,
                        color=colour,
                    )
            front = measured[measured["front"]]
            axes.scatter(
                front["median_ms"],
                100 * front["error"],
                s=260,
                facecolors="none",
                edgecolors=HIGHLIGHT,
                linewidths=1.6,
                zorder=5,
                label="non-dominated (latency, error, cost)",
            )
            for row in rows[rows["kind"] == "profiled"].itertuples(index=False):
                axes.scatter(row.median_ms, 100 * row.error, marker="X", s=140, color="#999999", zorder=4)
                axes.annotate(
                    f"{row.run} (profiled)",
                    (row.median_ms, 100 * row.error),
                    textcoords="offset points",
                    xytext=(7, -14),
                    fontsize=10,
                    color="#555555",
                )
            axes.set_xlabel("median end-to-end time per sample (ms)")
            axes.set_ylabel("error (%)")
            axes.set_title(f"{model} · points labelled with c_thr", loc="left")
            axes.legend(loc="upper right")
        figure.suptitle(
            "Early exits: latency, error and cloud cost per threshold",
            fontsize=19,
            fontweight="bold",
            x=0.01,
            ha="left",
        )
        return _save(figure, path)


CODEC_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h")
"""One marker per codec in the rate and accuracy chart, the same at every cut."""


def _codec_markers(codecs: pd.Series) -> dict[str, str]:
    """A marker per codec, in the order they first appear."""
    return dict(zip(dict.fromkeys(codecs), itertools.cycle(CODEC_MARKERS), strict=False))


def accuracy_limits(percents: pd.Series) -> tuple[float, float]:
    """The accuracy axis of the rate and accuracy chart: the measured range with a margin, within
    0 to 100. Codecs that keep accuracy differ by fractions of a point, invisible on a 0 to 100 axis;
    a codec that loses it (the scrambled control) widens the range to show how far it fell."""
    low, high = float(percents.min()), float(percents.max())
    margin = max(1.0, 0.15 * (high - low))
    return max(0.0, low - margin), min(100.0, high + margin)


def rate_accuracy_front(group: pd.DataFrame) -> pd.DataFrame:
    """The rows of one cut that no other beats on both fewer bytes and higher accuracy, by bytes."""
    ordered = group.sort_values(["bytes_wire", "accuracy"], ascending=[True, False])
    cheaper_best = ordered["accuracy"].cummax().shift(fill_value=float("-inf"))
    return ordered[ordered["accuracy"] > cheaper_best]


def rate_accuracy(table: pd.DataFrame, path: Path) -> Path:
    """Cut codecs: top-1 accuracy against bytes on the wire per inference (log scale), a colour per
    cut and a marker per codec, the uncompressed model's accuracy dashed. Each cut's curve is a step:
    the best accuracy the cut gives within a byte budget, up to its largest codec's bytes (its rate
    and accuracy front). One panel per model; ``table`` is ``codecs.csv``, with accuracies. Markers, not
    text labels: codecs at one cut often land within a few bytes and a point of each other. Where
    blosc2 compression was swept too, a marker stands for a codec and compression pair."""
    swept = table["compression"].nunique() > 1
    table = table.assign(
        codec=[
            f"{codec} + {blosc}" if swept and blosc != "none" else codec
            for codec, blosc in zip(table["codec"], table["compression"], strict=True)
        ]
    )
    models = list(dict.fromkeys(table["model"]))
    markers = _codec_markers(table["codec"])
    with mpl.rc_context(STYLE):
        figure, panels = _model_panels(len(models))
        for model, axes in zip(models, panels, strict=True):
            rows = table[table["model"] == model]
            handles: list = []
            for (cut, group), colour in zip(rows.groupby("cut", sort=True), itertools.cycle(PALETTE), strict=False):
                front = rate_accuracy_front(group)
                steps_x = [*front["bytes_wire"], group["bytes_wire"].max()]
                steps_y = [*(100 * front["accuracy"]), 100 * front["accuracy"].iloc[-1]]
                label = f"cut {cut} {group['layer'].iloc[0]}"
                handles += axes.plot(steps_x, steps_y, drawstyle="steps-post", color=colour, label=label)
                for row in group.itertuples(index=False):
                    axes.scatter(
                        row.bytes_wire,
                        100 * row.accuracy,
                        marker=markers[row.codec],
                        s=90,
                        color=colour,
                        edgecolors="black",
                        linewidths=0.6,
                        alpha=0.85,
                        zorder=3,
                    )
            uncompressed = rows["uncompressed_accuracy"].dropna()
            if not uncompressed.empty:
                level = 100 * uncompressed.iloc[0]
                handles.append(axes.axhline(level, color="black", linestyle="--", linewidth=1.2, label="uncompressed"))
            for codec in dict.fromkeys(rows["codec"]):
                handles.append(
                    Line2D([], [], linestyle="", marker=markers[codec], markersize=9, color="#999999", label=codec)
                )
            axes.set_xscale("log")
            axes.xaxis.set_major_locator(LogLocator(subs=(1, 2, 3, 5, 7)))
            axes.xaxis.set_major_formatter(EngFormatter(unit="B", places=0))
            axes.xaxis.set_minor_formatter(NullFormatter())
            axes.set_xlabel("bytes on the wire per inference (median, log scale)")
            axes.set_ylim(*accuracy_limits(100 * pd.concat([rows["accuracy"], uncompressed]).dropna()))
            axes.set_ylabel("top-1 accuracy (%)")
            pairs = " and compression" if swept else ""
            axes.set_title(f"{model} · a colour per cut, a marker per codec{pairs}", loc="left")
            axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        figure.suptitle(
            "Cut codecs: bytes on the wire against accuracy", fontsize=19, fontweight="bold", x=0.01, ha="left"
        )
        return _save(figure, path)


def codec_time_by_cut(table: pd.DataFrame, path: Path) -> Path:
    """Cut codecs: the median end-to-end time per cut, a line and marker per codec, one panel per
    group of runs alike but for their codec (``codec_times``); each codec's fastest cut ringed. The
    seed's total inference time by split layer with the codecs side by side."""
    groups = list(dict.fromkeys(table["group"]))
    markers = _codec_markers(table["codec"])
    with mpl.rc_context(STYLE):
        figure, panels = _model_panels(len(groups))
        for group, axes in zip(groups, panels, strict=True):
            rows = table[table["group"] == group]
            cuts = rows[["cut", "layer"]].drop_duplicates("cut").sort_values("cut").reset_index(drop=True)
            position = {cut: index for index, cut in enumerate(cuts["cut"])}
            for (codec, series), colour in zip(
                rows.groupby("codec", sort=False), itertools.cycle(PALETTE), strict=False
            ):
                places = series["cut"].map(position)
                axes.plot(
                    places, series["total_ms_median"], marker=markers[codec], markersize=8, color=colour, label=codec
                )
                fastest = series["total_ms_median"].idxmin()
                axes.scatter(
                    places[fastest],
                    series.at[fastest, "total_ms_median"],
                    s=260,
                    facecolors="none",
                    edgecolors=colour,
                    linewidths=2,
                    zorder=4,
                )
            _cut_axis(axes, cuts)
            axes.set_ylim(bottom=0)
            axes.set_ylabel("median end-to-end time (ms)")
            axes.yaxis.set_major_formatter("{x:,.1f}")
            axes.set_title(f"{group} · a line per codec, its fastest cut ringed", loc="left")
            axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="codec")
        figure.suptitle(
            "Cut codecs: total inference time by split layer", fontsize=19, fontweight="bold", x=0.01, ha="left"
        )
        return _save(figure, path)


def upload_queries(partitions: pd.DataFrame, queries: pd.DataFrame, path: Path, repeat: int = 0) -> Path:
    """The seed's Figure 7 for one repeat: each plan's query latency against the time it started
    (seconds from the upload's start), a dotted line where each of its partitions was acknowledged;
    below, the queries finished so far, the upload's end marked."""
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH_PX / DPI, 1.3 * HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        latency, done = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
        for axes in (latency, done):
            axes.grid(alpha=0.3)
            axes.set_axisbelow(True)
        runs = dict.fromkeys([*partitions["run"], *queries["run"]])
        for run, colour in zip(runs, PALETTE, strict=False):
            parts, asked = partitions[partitions["run"] == run], queries[queries["run"] == run]
            label = asked["plan"].iloc[0]
            shown = repeat if repeat in set(asked["repeat"]) else int(asked["repeat"].min())
            asked = asked[asked["repeat"] == shown].sort_values("query")
            starts = asked["start_ns"] / 1e9
            latency.plot(
                starts, (asked["end_ns"] - asked["start_ns"]) / 1e6, "o-", color=colour, markersize=4, label=label
            )
            acked = parts[parts["repeat"] == shown]["acked_ns"] / 1e9
            for at in acked:
                latency.axvline(at, color=colour, linestyle=":", alpha=0.7)
            done.step(asked["end_ns"] / 1e9, range(1, len(asked) + 1), where="post", color=colour, label=label)
            if len(acked):
                done.axvline(acked.max(), color=colour, linestyle="--", alpha=0.8)
        latency.set_ylabel("query latency (ms)")
        latency.set_yscale("log")
        latency.legend(loc="upper right")
        latency.set_title("dotted: a partition acknowledged", loc="left")
        done.set_ylabel("queries finished")
        done.set_xlabel("time since the upload started (s)")
        done.set_title("dashed: the upload's end", loc="left")
        figure.suptitle(
            "Incremental upload: queries during the upload, per plan", fontsize=19, fontweight="bold", x=0.01, ha="left"
        )
        return _save(figure, path)
