"""Results folder: records reach disk row by row, summaries match hand-computed numbers, the report stands alone."""

import json
import math
import re
import struct
from dataclasses import replace

import matplotlib as mpl
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import BadInput
from harness.results import (
    InferenceRecord,
    RecordWriter,
    ResultsFolder,
    best_cuts,
    build_report,
    summarise,
    write_layers,
)
from harness.results.charts import STYLE, time_by_cut_figure
from harness.results.records import FailedInference
from harness.results.summary import read_summary, run_info
from harness.results.writer import RECORD_SCHEMA, append_failures, convert_records
from tests.fixtures.records import inference

MS = 1_000_000
RUN = "alexnet-4MBs-none"
# Three cuts, four repeats; repeat r adds r ms to edge, transfer and the tail, so per cut the offsets are
# 0, 1, 2, 3 ms: median 1.5 ms, p95 (linear) 2 + 0.85 = 2.85 ms; the total carries three offsets.
LAYERS = ["input", "features.2", "classifier.6"]
EDGE = [0, 20 * MS, 60 * MS]
TRANSFER = [150 * MS, 30 * MS, 1 * MS]
TAIL = [10 * MS, 6 * MS, 0]
RAW = [602_112, 774_400, 4_000]


def record(cut: int, repeat: int, request: int = 0) -> InferenceRecord:
    edge, transfer, tail = EDGE[cut] + repeat * MS, TRANSFER[cut] + repeat * MS, TAIL[cut] + repeat * MS
    return inference(
        run=RUN,
        cut=cut,
        layer=LAYERS[cut],
        repeat=repeat,
        request=request,
        edge_ns=edge,
        transfer_ns=transfer,
        cloud_ns=tail,
        encode_ns=5_000,
        cloud_decode_ns=10_000,
        cloud_encode_ns=20_000,
        decode_ns=5_000,
        bytes_raw=RAW[cut],
        bytes_wire=RAW[cut] + 100 + 10 * repeat,
        reply_bytes_wire=4_200,
        started_at_ns=1_700_000_000_000_000_000 + request,
    )


def all_records() -> list[InferenceRecord]:
    return [record(cut, repeat, 3 * repeat + cut) for repeat in range(4) for cut in range(3)]


def write_folder(tmp_path, close: bool = True) -> ResultsFolder:
    folder = ResultsFolder(tmp_path / "sweep")
    writer = RecordWriter(folder)
    for item in all_records():
        writer.append(item)
    if close:
        writer.close()
    return folder


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_folder_refuses_a_non_empty_folder_and_writes_sorted_environment(tmp_path):
    folder = ResultsFolder(tmp_path / "new" / "sweep")
    folder.write_manifest("name: alexnet-4mbs")
    folder.write_environment({"torch": "2.5", "hosts": {"edge": {"cores": 4}}})
    assert folder.manifest.read_text() == "name: alexnet-4mbs\n"
    assert folder.environment.read_text().index('"hosts"') < folder.environment.read_text().index('"torch"')
    with pytest.raises(BadInput, match=r"sweep is not empty; expected a new or empty folder"):
        ResultsFolder(folder.path)
    with pytest.raises(BadInput, match="does not exist"):
        ResultsFolder.open(tmp_path / "missing")


def test_csv_grows_one_line_per_append_before_close(tmp_path):
    folder = ResultsFolder(tmp_path / "sweep")
    writer = RecordWriter(folder)
    for count, item in enumerate(all_records(), start=1):
        writer.append(item)
        lines = folder.records_csv.read_text().splitlines()
        assert len(lines) == 1 + count
        assert lines[0].split(",") == list(RECORD_SCHEMA.names)
    assert not folder.records_parquet.exists()
    writer.close()


def test_failures_appended_to_a_file_an_earlier_version_wrote_gain_its_new_column(tmp_path):
    """A sweep resumed after an upgrade: failures.csv was written before ``pipeline`` existed."""
    folder = ResultsFolder(tmp_path / "sweep")
    folder.failures.write_text("run,model,cut,repeat,input,attempt,error,at_ns\nr1,alexnet,3,0,0,1,worker died,17\n")
    failure = FailedInference("r2", "alexnet", 0, 2, 1, 1, "no reply", 18, pipeline="rpi1>3>gpu1")
    append_failures(folder, [failure])
    append_failures(folder, [replace(failure, repeat=3)])
    lines = folder.failures.read_text().splitlines()
    assert lines == [
        "run,model,cut,repeat,input,attempt,error,at_ns,pipeline",
        "r1,alexnet,3,0,0,1,worker died,17,",
        "r2,alexnet,0,2,1,1,no reply,18,rpi1>3>gpu1",
        "r2,alexnet,0,3,1,1,no reply,18,rpi1>3>gpu1",
    ]
    assert not list(folder.path.glob("*.partial"))


def test_parquet_equals_csv_with_int64_columns(tmp_path):
    folder = write_folder(tmp_path)
    table = pq.read_table(folder.records_parquet)
    assert table.schema.equals(RECORD_SCHEMA)
    assert str(table.schema.field("edge_ns").type) == "int64"
    # Empty text stays text; what a record does not say (no exits, labels or memory figures here)
    # is empty.
    missing = {name: [""] for name, value in all_records()[0].as_dict().items() if value is None}
    assert {"confidence", "threshold", "predicted", "label", "edge_peak_rss", "cloud_peak_rss"} <= set(missing)
    from_csv = pd.read_csv(
        folder.records_csv, dtype={"run": str, "layer": str}, keep_default_na=False, na_values=missing
    )
    pd.testing.assert_frame_equal(table.to_pandas(), from_csv, check_dtype=False)
    expected = all_records()[0].as_dict()
    read = table.to_pylist()[0]
    assert {key: value for key, value in read.items() if key not in missing} == {
        key: value for key, value in expected.items() if key not in missing
    }
    assert all(read[key] is None and expected[key] is None for key in missing), "null in Parquet"


def test_an_exit_and_a_label_read_back_typed_beside_records_without_them(tmp_path):
    folder = ResultsFolder(tmp_path / "sweep")
    labelled = replace(record(0, 1), exit=2, exit_host="cloud", confidence=0.75, threshold=0.5, predicted=7, label=3)
    with RecordWriter(folder) as writer:
        writer.append(record(0, 0))
        writer.append(labelled)
    table = pq.read_table(convert_records(folder))
    assert str(table.schema.field("predicted").type) == str(table.schema.field("label").type) == "int64"
    plain, read = table.to_pylist()
    assert read == labelled.as_dict()
    assert [plain[name] for name in ("confidence", "threshold", "predicted", "label")] == [None] * 4


def test_closing_twice_and_context_manager(tmp_path):
    folder = ResultsFolder(tmp_path / "sweep")
    with RecordWriter(folder) as writer:
        writer.append(record(0, 0).as_dict())
    assert writer.close() == folder.records_parquet
    with pytest.raises(ValueError, match="closed"):
        writer.append(record(0, 1))
    with pytest.raises(BadInput, match=r"records.csv already exists"):
        RecordWriter(folder)


def test_bad_records_are_refused_naming_the_field(tmp_path):
    writer = RecordWriter(ResultsFolder(tmp_path / "sweep"))
    fields = record(0, 0).as_dict()
    with pytest.raises(BadInput, match=r"records.csv: record lacks cut and has unknown cut_index"):
        writer.append({**{k: v for k, v in fields.items() if k != "cut"}, "cut_index": 0})
    with pytest.raises(BadInput, match=r"field 'edge_ns' is str \('5'\), expected int"):
        writer.append({**fields, "edge_ns": "5"})


def test_csv_left_by_a_crash_converts_without_its_partial_row(tmp_path):
    folder = write_folder(tmp_path, close=False)
    with folder.records_csv.open("a") as csv_file:
        csv_file.write(f"{RUN},alexnet,mod")
    path = convert_records(folder)
    assert pq.read_table(path).num_rows == 12


def test_layers_are_written_with_their_columns_checked(tmp_path):
    folder = ResultsFolder(tmp_path / "sweep")
    row = dict(host="pi", role="edge", run=RUN, model="alexnet", layer="features.0", op="Conv2d")
    rows = [{**row, "median_ns": 1_000, "p95_ns": 1_500, "repeats": 20}]
    with pytest.raises(BadInput, match=r"layer row 0 lacks p95_ns and has unknown p99_ns"):
        write_layers(folder, [{**row, "median_ns": 1, "p99_ns": 2, "repeats": 3}])
    with pytest.raises(BadInput, match=r"role 'gpu'; expected one of edge, cloud"):
        write_layers(folder, [{**rows[0], "role": "gpu"}])
    table = pq.read_table(write_layers(folder, rows))
    assert table.column_names == ["host", "role", "run", "model", "layer", "op", "median_ns", "p95_ns", "repeats"]
    assert table.to_pylist() == rows


def test_summary_medians_and_p95_match_hand_computed_values(tmp_path):
    summary = summarise(pd.DataFrame([item.as_dict() for item in all_records()]))
    assert list(summary["cut"]) == [0, 1, 2]
    assert list(summary["layer"]) == LAYERS
    assert list(summary["n"]) == [4, 4, 4]
    expected = {
        "edge_ms_median": [1.5, 21.5, 61.5],
        "edge_ms_p95": [2.85, 22.85, 62.85],
        "transfer_ms_median": [151.5, 31.5, 2.5],
        "transfer_ms_p95": [152.85, 32.85, 3.85],
        "cloud_ms_median": [11.53, 7.53, 1.53],
        "cloud_ms_p95": [12.88, 8.88, 2.88],
        "total_ms_median": [164.54, 60.54, 65.54],
        "total_ms_p95": [168.59, 64.59, 69.59],
    }
    for column, values in expected.items():
        assert list(summary[column]) == pytest.approx(values, abs=1e-9), column
    assert list(summary["bytes_raw"]) == RAW
    assert list(summary["bytes_wire"]) == [size + 115 for size in RAW]
    best = best_cuts(summary)
    assert best.to_dict("records") == [
        {"run": RUN, "cut": 1, "pipeline": "", "layer": "features.2", "total_ms_median": 60.54}
    ]


def test_report_has_charts_of_the_right_size_and_no_external_references(tmp_path):
    folder = write_folder(tmp_path)
    folder.write_manifest("name: alexnet-4mbs\n")
    folder.write_environment({"hosts": [{"name": "pi", "arch": "aarch64", "cores": 4, "memory": 4 * 2**30}]})
    written = build_report(folder.path)
    assert written == [folder.summary, folder.time_chart(RUN), folder.bytes_chart(RUN), folder.report]
    for chart in (folder.time_chart(RUN), folder.bytes_chart(RUN)):
        assert png_size(chart) == (1600, 900)
    page = folder.report.read_text()
    assert RUN in page and "alexnet-4mbs" in page and "aarch64" in page and "4.0 GiB" in page
    assert re.search(r'src="data:image/png;base64,[A-Za-z0-9+/]{1000,}', page)
    assert not re.search(r"https?:", page)
    assert pd.read_csv(folder.summary).columns[5:7].tolist() == ["edge_ms_median", "edge_ms_p95"]


def _links_rows(folder: ResultsFolder) -> list[list[str]]:
    build_report(folder.path)
    return _table_after(folder.report.read_text(), "<h3>Links</h3>")


def test_report_shows_each_links_qdiscs_and_measured_rate_from_a_folder_of_one_link_per_host(tmp_path):
    folder = write_folder(tmp_path)
    tc_link = {
        "shaping": "tc",
        "tc": {"device": "eth1", "rate": "4000000", "tc_rate": "4182321"},
        "applied": {"eth1": [{"kind": "htb"}], "ifb5150-eth1": [{"kind": "htb"}, {"kind": "ingress"}]},
        "measured": {"bytes": 4000000, "seconds": 1.0101, "rate": 3960004.0, "to": "10.0.0.3"},
    }
    folder.write_environment({"links": {"rpi1": tc_link, "gpu1": {"shaping": "emulated", "links": []}}})
    assert _links_rows(folder) == [
        ["gpu1", "-", "emulated", "-", "-", "-", "-", "-", "-"],
        ["rpi1", "-", "tc", "eth1", "htb, ingress", "4.000", "-", "3.960", "0.990"],
    ]


def test_report_shows_a_row_per_host_and_link_with_its_runs_and_the_rate_tc_read_back(tmp_path):
    folder = write_folder(tmp_path)

    def shaped(rate: int, runs: list[str], measured: float) -> dict:
        applied = {"eth0": [{"kind": "htb", "root": True}, {"kind": "bfifo"}]}
        classes = {"eth0": [{"kind": "htb", "classid": "5150:1", "rate": rate * 1.0456, "ceil": rate * 1.0456}]}
        tc = {"device": "eth0", "rate": str(rate)}
        return {"shaping": "tc", "runs": runs, "tc": tc, "applied": applied, "classes": classes, "measured": measured}

    paced = {"shaping": "emulated", "runs": ["m-1MBps-emulated-none"], "tc": {"device": "eth0", "rate": "0"}}
    records = [
        shaped(8_000_000, ["m-8MBps-none"], {"rate": 7_900_000.0}),
        shaped(4_000_000, ["m-4MBps-none", "m-4MBps-lz4"], {"rate": 3_980_000.0}),
        paced,
    ]
    folder.write_environment({"links": {"rpi1": records}})
    assert _links_rows(folder) == [
        ["rpi1", "m-1MBps-emulated-none", "emulated", "eth0", "-", "-", "-", "-", "-"],
        ["rpi1", "m-4MBps-none, m-4MBps-lz4", "tc", "eth0", "bfifo, htb", "4.000", "4.182", "3.980", "0.995"],
        ["rpi1", "m-8MBps-none", "tc", "eth0", "bfifo, htb", "8.000", "8.365", "7.900", "0.988"],
    ]


def _table_after(page: str, heading: str) -> list[list[str]]:
    table = page.split(heading)[1].split("</table>")[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>")[1])
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]


def test_report_environment_reads_as_rows_not_json(tmp_path):
    folder = write_folder(tmp_path)
    folder.write_environment(
        {
            "controller": {"python": "3.11.2", "platform": "Linux-6.1.0-x86_64-with-glibc2.36"},
            "git": {"revision": "af00e73", "dirty": True},
            "packages": {"ansible-core": "2.19.14", "torch": "2.13.0", "split-harness": None},
            "inventory": "inventory/local",
        }
    )
    build_report(folder.path)
    page = folder.report.read_text()
    assert "{&quot;" not in page and '{"' not in page, "no cell holds raw JSON"
    facts = dict(_table_after(page, "<h2>Environment</h2>"))
    assert facts == {
        "controller": "Python 3.11.2 on Linux-6.1.0-x86_64-with-glibc2.36",
        "git": "af00e73 (dirty: uncommitted changes)",
        "inventory": "inventory/local",
    }
    assert _table_after(page, "<h3>Packages on the controller</h3>") == [
        ["ansible-core", "2.19.14"],
        ["split-harness", "not installed"],
        ["torch", "2.13.0"],
    ]


def test_an_unlimited_link_is_recorded_and_summarised_in_words(tmp_path):
    folder = ResultsFolder(tmp_path / "sweep")
    with RecordWriter(folder) as writer:
        for item in all_records():
            writer.append(replace(item, rate=math.inf))
    build_report(folder.path)
    assert set(pd.read_parquet(folder.records_parquet)["rate"]) == {math.inf}
    assert set(pd.read_csv(folder.records_csv)["rate"]) == {math.inf}
    (info,) = run_info(pd.read_parquet(folder.records_parquet))
    assert info.link == "emulated link, rate unlimited"
    assert "emulated link, rate unlimited" in folder.report.read_text()


@pytest.mark.parametrize("best_cut", [0, 1, 11, 21, 22])
def test_the_best_cuts_label_stays_inside_the_chart(best_cut):
    """AlexNet on inventory/local picks its last cut of 23: a label centred over the last bar ran off the edge."""
    records = pd.DataFrame(
        [
            inference(
                cut=cut, repeat=0, layer=f"features.{cut}", edge_ns=MS * cut, transfer_ns=MS, cloud_ns=MS
            ).as_dict()
            for cut in range(23)
        ]
    )
    summary = summarise(records)
    (info,) = run_info(records)
    with mpl.rc_context(STYLE):
        figure = time_by_cut_figure(summary, info, best_cut)
        renderer = figure.canvas.get_renderer()
        figure.draw(renderer)
        (axes,) = figure.axes
        (label,) = [text for text in axes.texts if text.get_text().startswith("best: cut")]
        box, inside = label.get_window_extent(renderer), axes.get_window_extent(renderer)
    assert inside.x0 <= box.x0 and box.x1 <= inside.x1, (box, inside)


def test_report_command_converts_a_lone_csv(tmp_path):
    folder = write_folder(tmp_path, close=False)
    result = CliRunner().invoke(cli, ["report", str(folder.path)])
    assert result.exit_code == 0, result.output
    assert str(folder.records_parquet) in result.stdout.splitlines()
    assert str(folder.report) in result.stdout.splitlines()
    assert folder.records_parquet.is_file()
    assert re.search(r"1 \S+ features.2 .* 60.54 .* best", result.stdout)


@pytest.mark.parametrize("content", [None, "header only"])
def test_report_command_on_a_folder_without_records_exits_2(tmp_path, content):
    folder = tmp_path / "empty"
    folder.mkdir()
    if content:
        (folder / "records.csv").write_text(",".join(RECORD_SCHEMA.names) + "\n")
    result = CliRunner().invoke(cli, ["report", str(folder)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("harness: error: ")
    assert str(folder) in lines[0]
    assert ("no records.parquet or records.csv" if content is None else "holds no records") in lines[0]


def test_environment_json_must_be_an_object(tmp_path):
    folder = write_folder(tmp_path)
    folder.environment.write_text(json.dumps([1, 2]))
    with pytest.raises(BadInput, match=r"environment.json: holds a list; expected a JSON object"):
        build_report(folder.path)


def test_a_cuts_rate_and_accuracy_front_keeps_the_codecs_that_nothing_cheaper_beats():
    from harness.results.charts import rate_accuracy_front

    cut = pd.DataFrame(
        {
            "codec": ["none", "fp16", "bf16", "int8", "int4-channel", "topk:0.25"],
            "bytes_wire": [16_862, 8_692, 8_692, 4_634, 3_077, 8_704],
            "accuracy": [0.972, 0.972, 0.970, 0.972, 0.961, 0.978],
        }
    )
    assert list(rate_accuracy_front(cut)["codec"]) == ["int4-channel", "int8", "topk:0.25"]


@pytest.mark.parametrize(
    ("percents", "limits"),
    [([96.7, 97.2], (95.7, 98.2)), ([97.2, 97.2], (96.2, 98.2)), ([8.0, 97.0], (0.0, 100.0)), ([99.9], (98.9, 100.0))],
)
def test_the_accuracy_axis_shows_a_fraction_of_a_point_and_widens_to_a_codec_that_lost_accuracy(percents, limits):
    from harness.results.charts import accuracy_limits

    assert accuracy_limits(pd.Series(percents)) == pytest.approx(limits)


def test_energy_is_summarised_per_cut_and_charted_only_where_a_host_measured_it(tmp_path):
    folder = ResultsFolder(tmp_path / "sweep")
    writer = RecordWriter(folder)
    for item in all_records():
        writer.append(replace(item, edge_joules=(1, 4, 9)[item.cut] / 1e3 + item.repeat / 1e3))
    writer.close()
    written = build_report(folder.path)
    assert written == [
        folder.summary,
        folder.time_chart(RUN),
        folder.bytes_chart(RUN),
        folder.energy_chart(RUN),
        folder.report,
    ]
    assert png_size(folder.energy_chart(RUN)) == (1600, 900)
    summary = read_summary(folder.summary)
    assert list(summary["edge_mj_median"]) == pytest.approx([2.5, 5.5, 10.5]), "the median of 1-4, 4-7 and 9-12 mJ"
    assert summary["cloud_mj_median"].isna().all(), "empty where the worker had no source, never zero"
    rows = _table_after(folder.report.read_text(), f"<h2>Run {RUN}</h2>")
    assert [row[-2:] for row in rows] == [["2.500", ""], ["5.500", ""], ["10.500", ""]]


def test_a_summary_written_before_energy_was_measured_reads_with_empty_energy(tmp_path):
    folder = write_folder(tmp_path)
    build_report(folder.path)
    older = pd.read_csv(folder.summary).drop(columns=["edge_mj_median", "cloud_mj_median"])
    older.to_csv(folder.summary, index=False)
    summary = read_summary(folder.summary)
    assert summary[["edge_mj_median", "cloud_mj_median"]].isna().all().all() and len(summary) == 3
