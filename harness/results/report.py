"""A results folder's report: summary.csv, the charts, and one HTML page that can be mailed or archived.

The page is self-contained (charts as data URIs, inline CSS, nothing fetched), so it reads the same
offline, years later, from any copy of the folder. Everything here is rebuilt from the records
alone, so a report can be redone after the sweep, or after a crash once the CSV is converted.
"""

import base64
import html
import json
from pathlib import Path

import pandas as pd
import yaml
from rich.table import Table

from harness.console import make_table
from harness.errors import BadInput
from harness.results.charts import (
    bytes_by_cut,
    codec_time_by_cut,
    energy_by_cut,
    exits_front,
    latency_over_time,
    predicted_vs_measured,
    rate_accuracy,
    time_by_cut,
    time_by_pipeline,
    upload_queries,
)
from harness.results.codecs import codec_table, codec_times
from harness.results.decisions import read_decisions, read_predictions
from harness.results.folder import ResultsFolder
from harness.results.placements import read_placements, read_replans
from harness.results.progressive import exits_table
from harness.results.summary import (
    ENERGY,
    PARTS,
    TIME_COLUMNS,
    RunInfo,
    best_cuts,
    read_summary,
    run_info,
    summarise,
    write_summary,
)
from harness.results.upload_summary import read_uploads, upload_summary
from harness.results.writer import convert_records

HOST_FACTS = ("arch", "cpu", "cores", "memory", "kernel")
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1700px;
       padding: 0 1.5rem; color: #1a1a1a; line-height: 1.4; }
h1 { margin-bottom: 0.2rem; }
h2 { margin-top: 2.5rem; border-bottom: 2px solid #ddd; padding-bottom: 0.2rem; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.92rem; }
th, td { padding: 0.25rem 0.7rem; border-bottom: 1px solid #e2e2e2; text-align: left; }
th { background: #f3f3f3; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #fbe3d6; font-weight: 600; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e2e2e2; }
figcaption { color: #555; font-size: 0.9rem; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; }
"""


def load_records(folder: ResultsFolder) -> tuple[pd.DataFrame, list[Path]]:
    """The records, and the parquet file when it had to be made from the CSV first."""
    written = []
    if not folder.records_parquet.is_file():
        if not folder.records_csv.is_file():
            raise BadInput(
                f"{folder.path} has no records.parquet or records.csv; "
                "expected the per-inference records a sweep writes"
            )
        written.append(convert_records(folder))
    records = pd.read_parquet(folder.records_parquet)
    if records.empty:
        raise BadInput(f"{folder.records_parquet} holds no records; expected at least one inference")
    return records, written


def _manifest_name(folder: ResultsFolder) -> str:
    if not folder.manifest.is_file():
        return folder.path.name
    try:
        manifest = yaml.safe_load(folder.manifest.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise BadInput(f"{folder.manifest}: not valid YAML ({error}); expected the manifest the sweep ran") from None
    name = manifest.get("name") if isinstance(manifest, dict) else None
    return str(name) if name else folder.path.name


def _environment(folder: ResultsFolder) -> dict | None:
    if not folder.environment.is_file():
        return None
    try:
        data = json.loads(folder.environment.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise BadInput(f"{folder.environment}: not valid JSON ({error}); expected a JSON object") from None
    if not isinstance(data, dict):
        raise BadInput(f"{folder.environment}: holds a {type(data).__name__}; expected a JSON object")
    return data


def _hosts(path: Path, hosts: object) -> list[tuple[str, dict]]:
    """Hosts as ``{"name": {facts}}`` or ``[{"name": ..., facts}]``: both are what an inventory yields."""
    if isinstance(hosts, dict) and all(isinstance(facts, dict) for facts in hosts.values()):
        return [(str(name), facts) for name, facts in hosts.items()]
    if isinstance(hosts, list) and all(isinstance(facts, dict) for facts in hosts):
        return [(str(facts.get("name", facts.get("host", index))), facts) for index, facts in enumerate(hosts)]
    raise BadInput(f"{path}: 'hosts' is a {type(hosts).__name__}; expected a mapping of host name to facts, or a list")


def _fact(facts: dict, name: str) -> str:
    value = facts.get(name, facts.get(f"{name}_bytes"))
    if value is None:
        return "-"
    if name == "memory" and isinstance(value, int | float):
        return f"{value / 2**30:.1f} GiB"
    return str(value)


def _e(value: object) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[str]], numeric: set[int], classes: list[str] | None = None) -> str:
    """An HTML table; cells are escaped here, so callers pass plain text."""

    def cell(tag: str, index: int, text: str) -> str:
        return f'<{tag} class="num">{_e(text)}</{tag}>' if index in numeric else f"<{tag}>{_e(text)}</{tag}>"

    head = "".join(cell("th", index, text) for index, text in enumerate(header))
    body = []
    for number, row in enumerate(rows):
        css = f' class="{classes[number]}"' if classes and classes[number] else ""
        body.append(f"<tr{css}>" + "".join(cell("td", index, text) for index, text in enumerate(row)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _environment_html(path: Path, data: dict) -> str:
    parts = ["<h2>Environment</h2>"]
    if "hosts" in data:
        hosts = _hosts(path, data["hosts"])
        rows = [
            [name, str(facts.get("role", "")), *(_fact(facts, fact) for fact in HOST_FACTS)] for name, facts in hosts
        ]
        parts.append(_table(["host", "role", *HOST_FACTS], rows, {4, 5}))
    links = data.get("links")
    if isinstance(links, dict) and links:
        parts.append(_links_html(links))
    facts = [[key, _provenance(key, value)] for key, value in sorted(data.items()) if key not in _OWN_TABLES]
    if facts:
        parts.append(_table(["fact", "value"], facts, set()))
    packages = data.get("packages")
    if isinstance(packages, dict) and packages:
        rows = [[str(name), str(version) if version else "not installed"] for name, version in packages.items()]
        parts.append("<h3>Packages on the controller</h3>" + _table(["package", "version"], rows, set()))
    return "\n".join(parts)


_OWN_TABLES = ("hosts", "links", "packages")


def _provenance(key: str, value: object) -> str:
    """A fact of environment.json in words: the controller's Python and platform, the git revision
    and whether the checkout had changes; anything else as it was written."""
    if key == "controller" and isinstance(value, dict):
        return f"Python {value.get('python', '?')} on {value.get('platform', '?')}"
    if key == "git" and isinstance(value, dict):
        if not value.get("revision"):
            return "not a git checkout"
        state = {True: "dirty: uncommitted changes", False: "clean"}.get(value.get("dirty"), "state unknown")
        return f"{value['revision']} ({state})"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _decisions_html(judged: pd.DataFrame) -> str:
    """One run's partitioners: pick, predicted and measured latency of the pick, regret and how surely
    the pick is slower than the best, decision time."""
    rows = [
        [
            str(row.partitioner),
            f"{row.cut} {row.layer}",
            f"{row.argmin} ({row.argmin_regret:.3f})" if pd.notna(row.argmin_regret) else str(row.argmin),
            _ms(row.predicted_ms),
            _ms(row.measured_ms),
            f"{row.regret:.3f}" if pd.notna(row.regret) else "-",
            f"{row.p_slower:.2g}" if pd.notna(row.p_slower) else "-",
            f"{row.decision_us:,.0f}",
            str(row.note),
        ]
        for row in judged.itertuples()
    ]
    header = [
        "partitioner",
        "pick",
        "argmin (regret)",
        "predicted ms",
        "measured ms",
        "regret",
        "p slower",
        "decision µs",
        "note",
    ]
    return _table(header, rows, {2, 3, 4, 5, 6, 7})


def _regret_html(decisions: pd.DataFrame) -> str:
    """Regret of every partitioner in every run: the measured latency of its pick over the best measured."""
    table = decisions.pivot_table(index="run", columns="partitioner", values="regret", sort=False, dropna=False)
    header = ["run", *table.columns]
    rows = [
        [str(run), *(f"{value:.3f}" if pd.notna(value) else "-" for value in values)]
        for run, values in table.iterrows()
    ]
    return (
        "<h2>Partitioners' regret</h2><p class='meta'>measured latency of each partitioner's pick over the best "
        "measured cut (1.000 is the best)</p>" + _table(header, rows, set(range(1, len(header))))
    )


def _ms(value: object) -> str:
    return f"{value:,.2f}" if isinstance(value, int | float) and pd.notna(value) else "-"


def _links_html(links: dict) -> str:
    """How each host shaped each link of the sweep: the runs that went over it, what tc applied (the
    rate it read back), and the rate a real transfer achieved through it. A folder written before
    links changed within a sweep holds one record per host."""
    records = [
        (host, record)
        for host, held in links.items()
        for record in (held if isinstance(held, list) else [held])
        if isinstance(record, dict)
    ]
    rows = []
    for host, link in sorted(records, key=lambda item: (item[0], _number((item[1].get("tc") or {}).get("rate")) or 0)):
        tc = link.get("tc") or {}
        applied = link.get("applied") or {}
        qdiscs = sorted({qdisc.get("kind", "?") for device in applied.values() for qdisc in device})
        measured = link.get("measured") or {}
        rate = _number(tc.get("rate"))
        achieved = _number(measured.get("rate"))
        read_back = _read_back_rate(link, str(tc.get("device", "")))
        rows.append(
            [
                host,
                ", ".join(link.get("runs") or []) or "-",
                str(link.get("shaping", "-")),
                str(tc.get("device", "-")),
                ", ".join(qdiscs) or "-",
                f"{rate / 1e6:.3f}" if rate else "-",
                f"{read_back / 1e6:.3f}" if read_back else "-",
                f"{achieved / 1e6:.3f}" if achieved else "-",
                f"{achieved / rate:.3f}" if rate and achieved else "-",
            ]
        )
    header = [
        "host",
        "runs",
        "shaping",
        "device",
        "qdiscs",
        "rate MB/s",
        "applied MB/s",
        "measured MB/s",
        "measured / rate",
    ]
    return "<h3>Links</h3>" + _table(header, rows, {5, 6, 7, 8})


def _read_back_rate(link: dict, device: str) -> float | None:
    """The rate tc shows on the shaped device after shaping, frames included: its htb class's, or
    its tbf's where it shapes everything leaving the device."""
    classes = (link.get("classes") or {}).get(device) or []
    if classes:
        return _number(classes[0].get("rate"))
    root = next((q for q in (link.get("applied") or {}).get(device) or [] if q.get("root")), {})
    return _number((root.get("options") or {}).get("rate")) if root.get("kind") == "tbf" else None


def _number(value: object) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _runs_html(infos: list[RunInfo], best: pd.DataFrame) -> str:
    by_run = best.set_index("run")
    rows = [
        [
            info.run,
            info.model,
            info.granularity,
            info.link,
            info.compression,
            str(info.cuts),
            str(info.inferences),
            by_run.loc[info.run, "pipeline"] or f"{by_run.loc[info.run, 'cut']} {by_run.loc[info.run, 'layer']}",
            f"{by_run.loc[info.run, 'total_ms_median']:,.2f}",
        ]
        for info in infos
    ]
    header = [
        "run",
        "model",
        "cuts by",
        "link",
        "compression",
        "cuts",
        "inferences",
        "best cut or pipeline",
        "best total ms",
    ]
    return "<h2>Runs</h2>\n" + _table(header, rows, {5, 6, 8})


def _measured_energy(rows: pd.DataFrame) -> bool:
    """Whether either host measured energy at any of a run's cuts."""
    return bool(rows[list(ENERGY)].notna().any().any())


def _summary_html(rows: pd.DataFrame, best_cut: int) -> str:
    """A run's medians and p95 per cut, and each host's median energy where either measured any."""
    energy = list(ENERGY) if _measured_energy(rows) else []
    header = ["cut", "layer", "n", *(column.replace("_", " ") for column in TIME_COLUMNS), "bytes", "on the wire"]
    header += [column.replace("_", " ").replace("mj", "mJ") for column in energy]
    body = [
        [
            str(row["cut"]),
            str(row["layer"]),
            str(row["n"]),
            *(f"{row[column]:,.2f}" for column in TIME_COLUMNS),
            f"{row['bytes_raw']:,}",
            f"{row['bytes_wire']:,}",
            *(_fraction(row[column], "{:,.3f}") for column in energy),
        ]
        for row in rows.to_dict("records")
    ]
    classes = ["best" if cut == best_cut else "" for cut in rows["cut"]]
    return _table(header, body, {0, *range(2, len(header))}, classes)


def _pipelines_section(
    folder: ResultsFolder, info: RunInfo, rows: pd.DataFrame, placements: pd.DataFrame | None, hops: pd.DataFrame | None
) -> tuple[str, list[Path]]:
    """A run over tiers: its pipelines' medians, the chart by pipeline, each strategy's prediction
    beside what it measured, and each worker's share of the pipelines."""
    judged = placements[placements["run"] == info.run] if placements is not None else None
    chart = time_by_pipeline(rows, info, folder.time_chart(info.run), judged)
    best = rows.sort_values(["total_ms_median", "pipeline"]).iloc[0]["pipeline"]
    header = ["pipeline", "n", *(column.replace("_", " ") for column in TIME_COLUMNS), "bytes leaving the edge"]
    body = [
        [
            str(row["pipeline"]),
            str(row["n"]),
            *(f"{row[column]:,.2f}" for column in TIME_COLUMNS),
            f"{row['bytes_raw']:,}",
        ]
        for row in rows.to_dict("records")
    ]
    classes = ["best" if pipeline == best else "" for pipeline in rows["pipeline"]]
    section = (
        f"<h2>Run {_e(info.run)}</h2>\n<p class='meta'>{_e(info.caption())} · cloud = every worker's decode, "
        "segment and encode; transfer = end-to-end minus every host's own work, over all hops</p>\n"
        + _table(header, body, set(range(1, len(header))), classes)
        + _figure_html(chart, f"total inference time by pipeline, run {info.run}", chart.name)
    )
    if judged is not None and not judged.empty:
        section += "<h3>Placement strategies</h3>" + _placements_html(judged)
    if hops is not None:
        run_hops = hops[hops["run"] == info.run]
        if not run_hops.empty:
            section += "<h3>Workers</h3>" + _hops_html(run_hops)
    return section, [chart]


def _replans_section(
    folder: ResultsFolder, info: RunInfo, records: pd.DataFrame, replans: pd.DataFrame, charts: list[Path]
) -> str:
    """A run that re-planned: its latency over time with the link events and switches, and every round."""
    chart = latency_over_time(records[records["run"] == info.run], replans, info, folder.replan_chart(info.run))
    charts.append(chart)
    rows = [
        [
            f"{row.at_s:,.2f}",
            str(row.trigger),
            str(row.running),
            _ms(row.running_ms),
            str(row.best) if pd.notna(row.best) else "-",
            _ms(row.best_ms),
            f"{row.gain:.1%}" if pd.notna(row.gain) else "-",
            "switched" if row.switched else "",
            str(row.reason),
            f"{row.measure_ms:,.0f}",
            f"{row.switch_ms:,.0f}" if row.switched else "-",
        ]
        for row in replans.itertuples()
    ]
    header = [
        "at s",
        "trigger",
        "running",
        "predicted ms",
        "best",
        "best predicted ms",
        "gain",
        "",
        "why",
        "measuring ms",
        "switching ms",
    ]
    return (
        "<h3>Re-planning</h3><p class='meta'>every round prices the running pipeline and the strategy's answer on "
        "the links just measured; measuring pauses the stream, and a switch prepares the new pipeline on every "
        "worker before the next inference takes it</p>"
        + _figure_html(chart, f"latency over time, run {info.run}", chart.name)
        + _table(header, rows, {0, 3, 5, 6, 9, 10})
    )


def _placements_html(judged: pd.DataFrame) -> str:
    """Each strategy's pipeline, its status and solve time, predicted against measured, and regret."""
    rows = [
        [
            str(row.strategy),
            str(row.pipeline) if pd.notna(row.pipeline) and row.pipeline else "no feasible placement",
            str(row.status),
            _ms(row.predicted_ms),
            _ms(row.measured_ms),
            f"{row.measured_ms / row.predicted_ms:.2f}" if pd.notna(row.measured_ms) and row.predicted_ms else "-",
            f"{row.regret:.3f}" if pd.notna(row.regret) else "-",
            f"{row.p_slower:.2g}" if pd.notna(row.p_slower) else "-",
            f"{row.gap:+.1%}" if pd.notna(row.gap) else "-",
            f"{row.solve_ms:,.1f}",
        ]
        for row in judged.itertuples()
    ]
    header = [
        "strategy",
        "pipeline",
        "status",
        "predicted ms",
        "measured ms",
        "measured / predicted",
        "regret",
        "p slower",
        "vs dp (predicted)",
        "solve ms",
    ]
    return (
        "<p class='meta'>regret: the measured median of the strategy's pipeline over the best measured pipeline's; "
        "predicted before the sweep from a profile taken on the controller, scaled by each host's harness_speed</p>"
        + _table(header, rows, {3, 4, 5, 6, 7, 8, 9})
    )


def _hops_html(hops: pd.DataFrame) -> str:
    """Per pipeline and worker: the cut range it ran and its medians, each timed on its own host."""
    grouped = hops.groupby(["pipeline", "hop"], sort=True)
    rows = [
        [
            str(pipeline),
            str(hop),
            str(group["host"].iloc[0]),
            f"{group['start_cut'].iloc[0]} to {'output' if group['end_cut'].iloc[0] < 0 else group['end_cut'].iloc[0]}",
            f"{group['compute_ns'].median() / 1e6:,.2f}",
            f"{group['busy_ns'].median() / 1e6:,.2f}",
            f"{int(group['bytes_raw'].median()):,}",
        ]
        for (pipeline, hop), group in grouped
    ]
    header = ["pipeline", "hop", "host", "cuts", "compute ms", "busy ms", "bytes received"]
    return _table(header, rows, {1, 4, 5, 6})


def _exits_html(table: pd.DataFrame, chart: Path) -> str:
    """Per model, each placement and threshold measured, then the profiled baselines; the front marked."""
    header = ["model", "placement", "c_thr", "accuracy", "median ms", "p95 ms", "left at", "answered on edge"]
    header += ["bytes/sample", "edge part MB", "cloud part MB", "edge RSS MB", "worker RSS MB"]
    header += ["cloud $/1,000", "of cloud-only", "front"]
    rows, classes = [], []
    for row in table.itertuples(index=False):
        measured = row.kind == "measured"
        rows.append(
            [
                row.model.rpartition(":")[2],
                row.placement if measured else f"{row.run} (profiled)",
                f"{row.threshold:g}" if measured else "",
                _fraction(row.accuracy, "{:.3f}"),
                _fraction(row.median_ms, "{:,.2f}"),
                _fraction(row.p95_ms, "{:,.2f}"),
                row.exit_shares if measured else "",
                _fraction(row.edge_share, "{:.0%}"),
                _fraction(row.bytes_per_sample, "{:,.0f}"),
                _fraction(row.edge_memory_mb, "{:,.1f}"),
                _fraction(row.cloud_memory_mb, "{:,.1f}"),
                _fraction(row.edge_peak_rss_mb, "{:,.0f}"),
                _fraction(row.cloud_peak_rss_mb, "{:,.0f}"),
                _fraction(row.cost_per_1000, "{:.3g}"),
                _fraction(row.cost_vs_cloud_only, "{:.0%}"),
                "yes" if row.front else "",
            ]
        )
        classes.append("best" if row.front else "")
    return (
        "<h2>Early exits</h2><p class='meta'>per placement and confidence threshold c_thr, every sample of the "
        "labelled test part once; a sample leaves at the first exit more confident than c_thr (1: none leaves "
        "early, the split model itself). Cloud cost: each offloaded sample billed for the worker's time and its "
        "reply, against the whole network on the cloud for every sample. Baselines profiled: the per-layer "
        "medians summed. Part MB: parameters and buffers with the exits; RSS: each process's peak resident memory. "
        "Front: no other setting is faster, more accurate and cheaper at once.</p>"
        + _table(header, rows, set(range(2, 16)) - {6}, classes)
        + _figure_html(chart, "latency against error per placement and threshold", chart.name)
    )


def _codecs_html(table: pd.DataFrame, chart: Path | None, time_chart: Path | None) -> str:
    """Per model, compression and cut, each codec's bytes, its own time on each host and what it did to the answers."""
    header = ["model", "compression", "cut", "layer", "codec", "n", "raw B", "wire B", "ratio", "encode ms"]
    header += ["decode ms", "accuracy", "uncompressed", "agreement"]
    rows = [
        [
            row.model.rpartition(":")[2],
            row.compression,
            str(row.cut),
            row.layer,
            row.codec,
            str(row.n),
            f"{row.bytes_raw:,}",
            f"{row.bytes_wire:,}",
            f"{row.ratio:.2f}",
            f"{row.codec_encode_ms:.3f}",
            f"{row.codec_decode_ms:.3f}",
            _fraction(row.accuracy, "{:.3f}"),
            _fraction(row.uncompressed_accuracy, "{:.3f}"),
            _fraction(row.agreement, "{:.3f}"),
        ]
        for row in table.itertuples(index=False)
    ]
    return (
        "<h2>Cut codecs</h2><p class='meta'>per model, blosc2 compression, cut and codec: bytes per inference "
        "before the codec (raw) "
        "and on the wire, medians; the codec's own encode time on the edge and decode time on the worker; top-1 "
        "accuracy on the labelled inputs beside the uncompressed model's at the same cut, and agreement: the "
        "share of inputs answered as the uncompressed model answers them.</p>"
        + _table(header, rows, set(range(5, 14)))
        + (_figure_html(chart, "accuracy against bytes on the wire per cut and codec", chart.name) if chart else "")
        + (_figure_html(time_chart, "end-to-end time by split layer per codec", time_chart.name) if time_chart else "")
    )


def _choices_html(choices: pd.DataFrame) -> str:
    """Each partitioner's codec and cut within the accuracy floor, against the measured best pair."""
    header = ["runs like", "partitioner", "codec", "cut", "layer", "predicted ms", "measured ms", "accuracy"]
    header += ["best codec", "best cut", "best ms", "regret"]
    rows = [
        [
            row.group,
            row.partitioner,
            row.codec,
            str(row.cut),
            row.layer,
            _fraction(row.predicted_ms, "{:,.2f}"),
            _fraction(row.measured_ms, "{:,.2f}"),
            _fraction(row.accuracy, "{:.3f}"),
            _fraction(row.best_codec, "{}"),
            _fraction(row.best_cut, "{:.0f}"),
            _fraction(row.best_ms, "{:,.2f}"),
            _fraction(row.regret, "{:.3f}"),
        ]
        for row in choices.itertuples(index=False)
    ]
    floor = choices["max_accuracy_drop"].iloc[0] if not choices.empty else 0
    return (
        "<h3>Partitioners choosing the codec</h3><p class='meta'>each partitioner decides once per codec over the "
        f"cuts where the codec keeps accuracy within {floor:g} of the uncompressed model's, and keeps the pair it "
        "predicts fastest; regret is its measured latency over the fastest pair measured within the floor.</p>"
        + _table(header, rows, {3, 5, 6, 7, 9, 10, 11})
    )


def _fraction(value: object, spec: str) -> str:
    return "" if value is None or pd.isna(value) else spec.format(value)


def _figure_html(path: Path, alt: str, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def build_report(path: Path) -> list[Path]:
    """Rebuild summary.csv, two charts per run and report.html from a results folder; the files written."""
    folder = ResultsFolder.open(path)
    name = _manifest_name(folder)
    environment = _environment(folder)
    manifest = folder.manifest.read_text(encoding="utf-8") if folder.manifest.is_file() else None
    uploads = read_uploads(folder)
    has_records = folder.records_parquet.is_file() or folder.records_csv.is_file()
    written: list[Path] = []
    sections: list[str] = []
    overview = ""
    if uploads is not None:
        summary = upload_summary(*uploads)
        summary.to_csv(folder.upload_summary, index=False)
        written += [folder.upload_summary, upload_queries(*uploads, folder.upload_chart)]
        sections.append(_uploads_html(summary, folder.upload_chart))
        overview = f"{len(summary)} upload run(s) · {len(uploads[1]):,} queries"
    decisions = None
    if has_records or uploads is None:
        records, converted = load_records(folder)
        written += converted
        record_sections, infos, best, decisions, charts = _record_sections(folder, records)
        written += charts
        sections = record_sections + sections
        overview = f"{len(infos)} run(s) · {len(records):,} inferences" + (f" · {overview}" if overview else "")
        overview += (
            " · times are medians and p95 per cut; cloud = decode + tail + encode on the worker; "
            "total = end-to-end on the edge"
        )
        sections.insert(0, _runs_html(infos, best))
    page = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(name)}: split computing results</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(name)}</h1>",
        f"<p class='meta'>results folder {_e(folder.path.name)} · {overview}</p>",
        _regret_html(decisions) if decisions is not None and not decisions.empty else "",
        _environment_html(folder.environment, environment) if environment is not None else "",
        *sections,
        f"<h2>Manifest</h2><pre>{_e(manifest)}</pre>" if manifest is not None else "",
        "</body></html>",
    ]
    folder.report.write_text("\n".join(part for part in page if part) + "\n", encoding="utf-8")
    written.append(folder.report)
    return written


def _record_sections(folder: ResultsFolder, records: pd.DataFrame):
    """The sections of the per-inference records: (sections, runs, best cuts, decisions, files written)."""
    summary = summarise(records)
    written = [write_summary(summary, folder.summary)]
    best = best_cuts(summary)
    best_by_run = dict(zip(best["run"], best["cut"], strict=True))
    infos = run_info(records)
    decisions = read_decisions(folder)
    predictions = read_predictions(folder)
    placements = read_placements(folder)
    hops = pd.read_parquet(folder.hops) if folder.hops.is_file() else None
    replans = read_replans(folder)
    exits = exits_table(folder, records)
    sections = []
    codecs = codec_table(records)
    if codecs is not None:
        codecs.to_csv(folder.codecs, index=False, float_format="%.6g")
        written.append(folder.codecs)
        chart = rate_accuracy(codecs, folder.rate_accuracy_chart) if codecs["accuracy"].notna().any() else None
        times = codec_times(records, summary, infos)
        time_chart = codec_time_by_cut(times, folder.codec_time_chart) if times is not None else None
        written += [path for path in (chart, time_chart) if path]
        choices = pd.read_csv(folder.codec_choices) if folder.codec_choices.is_file() else None
        section = _codecs_html(codecs, chart, time_chart)
        sections.append(section + (_choices_html(choices) if choices is not None else ""))
    exit_runs: set[str] = set()
    if exits is not None:
        exits.to_csv(folder.exits, index=False)
        written += [folder.exits, exits_front(exits, folder.front_chart)]
        sections.append(_exits_html(exits, folder.front_chart))
        exit_runs = set(exits["run"])
    for info in infos:
        if info.run in exit_runs:
            continue
        rows = summary[summary["run"] == info.run]
        if rows["pipeline"].ne("").any():
            section, charts = _pipelines_section(folder, info, rows, placements, hops)
            if replans is not None and (replans["run"] == info.run).any():
                section += _replans_section(folder, info, records, replans[replans["run"] == info.run], charts)
            sections.append(section)
            written += charts
            continue
        judged = decisions[decisions["run"] == info.run] if decisions is not None else None
        picks = dict(zip(judged["partitioner"], judged["cut"], strict=True)) if judged is not None else {}
        time_chart = time_by_cut(rows, info, best_by_run[info.run], folder.time_chart(info.run), picks)
        bytes_chart = bytes_by_cut(rows, info, folder.bytes_chart(info.run))
        written += [time_chart, bytes_chart]
        section = (
            f"<h2>Run {_e(info.run)}</h2>\n<p class='meta'>{_e(info.caption())}</p>\n"
            + _summary_html(rows, best_by_run[info.run])
            + _figure_html(time_chart, f"total inference time by split layer, run {info.run}", time_chart.name)
            + _figure_html(bytes_chart, f"bytes crossing by split layer, run {info.run}", bytes_chart.name)
        )
        if _measured_energy(rows):
            energy_chart = energy_by_cut(rows, info, folder.energy_chart(info.run))
            written.append(energy_chart)
            section += _figure_html(
                energy_chart, f"energy per inference by split layer, run {info.run}", energy_chart.name
            )
        if judged is not None and not judged.empty:
            section += "<h3>Partitioners</h3>" + _decisions_html(judged)
            run_predictions = predictions[predictions["run"] == info.run] if predictions is not None else None
            if run_predictions is not None and not run_predictions.empty:
                chart = predicted_vs_measured(rows, run_predictions, info, folder.predicted_chart(info.run))
                written.append(chart)
                section += _figure_html(chart, f"predicted against measured latency, run {info.run}", chart.name)
        sections.append(section)
    return sections, infos, best, decisions, written


def _uploads_html(summary: pd.DataFrame, chart: Path) -> str:
    """One row per plan over its repeats: what went up and the queries that finished before it had."""
    header = ["plan", "repeats", "partitions", "largest", "upload s", "queries before end", "predicted"]
    header += ["simulated", "measured / predicted", "first query ms", "median query ms", "agree", "decision ms"]
    rows = [
        [
            row.plan,
            str(row.repeats),
            str(row.partitions),
            _fraction(row.largest_share, "{:.1%}"),
            _fraction(row.upload_s, "{:,.2f}"),
            f"{row.queries_before_end:,.1f} ± {row.queries_before_end_std:,.1f}",
            str(row.predicted_queries),
            str(row.simulated_queries),
            _fraction(row.measured_vs_predicted, "{:.2f}"),
            _fraction(row.first_query_ms, "{:,.1f}"),
            _fraction(row.median_query_ms, "{:,.1f}"),
            _fraction(row.agree, "{:.0%}"),
            _fraction(row.decision_ms, "{:.3f}"),
        ]
        for row in summary.itertuples(index=False)
    ]
    return (
        "<h2>Incremental upload</h2><p class='meta'>per plan, over its repeats: the worker starts with the "
        "architecture only and the edge uploads the weights in the plan's partitions while queries run back to "
        "back, each through the partitions acknowledged when it starts. Queries before end: finished before the "
        "last partition was acknowledged (mean ± spread); predicted: the plan's own model; simulated: the plan "
        "replayed with the link and the worker shared. Agree: queries whose output equals the whole model's "
        "(within 1e-2 relative error where the worker computes on a GPU).</p>"
        + _table(header, rows, set(range(1, 13)))
        + _figure_html(chart, "query latency and queries finished during the upload, per plan", chart.name)
    )


def summary_tables(path: Path) -> list[Table]:
    """What the report wrote, for the terminal: the records' summary and the uploads', where present."""
    folder = ResultsFolder.open(path)
    tables = [summary_table(path)] if folder.summary.is_file() else []
    if folder.upload_summary.is_file():
        tables.append(upload_table(path, pd.read_csv(folder.upload_summary)))
    return tables


def upload_table(path: Path, summary: pd.DataFrame) -> Table:
    table = make_table(
        f"{path}: incremental upload per plan",
        ["plan", "partitions>", "largest>", "upload s>", "before end>", "predicted>", "simulated>", "agree>"],
        caption="before end: queries finished before the last partition was acknowledged, mean ± spread over repeats",
    )
    for row in summary.itertuples(index=False):
        table.add_row(
            row.plan,
            str(row.partitions),
            _fraction(row.largest_share, "{:.1%}"),
            f"{row.upload_s:,.2f}",
            f"{row.queries_before_end:,.1f} ± {row.queries_before_end_std:,.1f}",
            str(row.predicted_queries),
            str(row.simulated_queries),
            _fraction(row.agree, "{:.0%}"),
        )
    return table


def summary_table(path: Path) -> Table:
    """The summary a report wrote, for the terminal: medians per run and cut, the best cut marked."""
    summary = read_summary(ResultsFolder.open(path).summary)
    best = set(best_cuts(summary)[["run", "cut", "pipeline"]].itertuples(index=False, name=None))
    table = make_table(
        f"{path}: medians per cut (ms)",
        [
            "run",
            "cut>",
            "after (or pipeline)",
            "n>",
            "edge>",
            "transfer>",
            "cloud>",
            "total>",
            "bytes>",
            "on the wire>",
            "",
        ],
        caption="cloud = decode + tail + encode on the worker; total = end-to-end; p95 in summary.csv",
    )
    for row in summary.itertuples(index=False):
        table.add_row(
            row.run,
            str(row.cut),
            row.pipeline or row.layer,
            str(row.n),
            *(f"{getattr(row, f'{part}_ms_median'):,.2f}" for part in PARTS),
            f"{row.bytes_raw:,}",
            f"{row.bytes_wire:,}",
            "best" if (row.run, row.cut, row.pipeline) in best else "",
        )
    return table
