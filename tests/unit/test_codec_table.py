"""codecs.csv: a row per model, compression, cut and codec, its accuracy measured on the labels;
and the rows a partitioner choosing the codec reads for its group."""

from pathlib import Path

import pandas as pd
import pytest

from harness.manifest import load_manifest
from harness.partition.codec_choice import allowed_cuts, group_rows
from harness.results import summarise
from harness.results.codecs import codec_table, codec_times
from harness.results.summary import run_info
from tests.fixtures.records import inference

WIRE = {
    ("none", "none"): 16_862,
    ("none", "int8"): 4_634,
    ("lz4:5:byte", "none"): 15_126,
    ("lz4:5:byte", "int8"): 4_663,
}
"""Bytes on the wire per compression and codec at the one cut, as a sweep of the digits measured."""
MODEL = "experiments.models:digits_resnet18"


def _records(labels: list[int]) -> pd.DataFrame:
    rows = []
    for (compression, codec), wire in WIRE.items():
        for number, label in enumerate(labels):
            wrong = codec == "int8" and number == 0
            rows.append(
                inference(
                    cut=4,
                    repeat=number,
                    layer="maxpool",
                    edge_ns=1_000_000,
                    transfer_ns=17_000_000,
                    cloud_ns=6_000_000,
                    input=number,
                    run=f"digits-{compression}-{codec}",
                    model=MODEL,
                    compression=compression,
                    codec=codec,
                    codec_encode_ns=200_000 if codec != "none" else 0,
                    cloud_codec_ns=80_000 if codec != "none" else 0,
                    bytes_raw=16_384,
                    bytes_wire=wire + number,
                    predicted=(label + 1) % 10 if wrong else label,
                    label=label,
                ).as_dict()
            )
    return pd.DataFrame(rows)


def test_runs_that_differ_in_compression_keep_rows_of_their_own_with_their_own_bytes():
    table = codec_table(_records([3, 1, 4, 1, 5]))
    assert list(zip(table["compression"], table["codec"], strict=True)) == [
        ("lz4:5:byte", "int8"),
        ("lz4:5:byte", "none"),
        ("none", "int8"),
        ("none", "none"),
    ]
    assert list(table["n"]) == [5, 5, 5, 5]
    assert list(table["bytes_wire"]) == [4_665, 15_128, 4_636, 16_864], "the median of each run's own five"
    assert list(table["ratio"]) == pytest.approx([16_384 / 4_665, 16_384 / 15_128, 16_384 / 4_636, 16_384 / 16_864])
    assert list(table["accuracy"]) == pytest.approx([0.8, 1.0, 0.8, 1.0])
    assert list(table["uncompressed_accuracy"]) == pytest.approx([1.0] * 4)
    assert list(table["agreement"]) == pytest.approx([0.8, 1.0, 0.8, 1.0])
    assert list(table["codec_encode_ms"]) == pytest.approx([0.2, 0.0, 0.2, 0.0])


def test_a_partitioner_choosing_the_codec_reads_the_rows_of_its_own_compression():
    table = codec_table(_records([3, 1, 4, 1, 5]))
    sets = ["compression=[none, lz4]", "codecs=[none, int8]"]
    runs = {run.id: run for run in load_manifest(Path("manifests/codecs.yml"), sets).runs}
    rows = group_rows(table, runs["digits_resnet18-module-1MBps-lz4-int8"])
    assert list(zip(rows["codec"], rows["bytes_wire"], strict=True)) == [("int8", 4_665), ("none", 15_128)]
    assert list(group_rows(table, runs["digits_resnet18-module-1MBps-none"])["bytes_wire"]) == [4_636, 16_864]
    assert allowed_cuts(rows, "int8", 0.2) == {4} and allowed_cuts(rows, "int8", 0.1) == set()


def test_each_codecs_time_by_cut_stands_beside_the_other_codecs_of_runs_alike_but_for_the_codec():
    records = _records([3, 1, 4, 1, 5])
    records.loc[records["codec"] == "int8", "transfer_ns"] = 5_000_000
    records["e2e_ns"] = records[["edge_ns", "transfer_ns", "cloud_ns"]].sum(axis=1)
    times = codec_times(records, summarise(records), run_info(records))
    link = "emulated link 4 MB/s"
    assert list(zip(times["group"], times["codec"], times["total_ms_median"], strict=True)) == [
        (f"{MODEL} (module cuts) · {link} · compression lz4:5:byte", "int8", 12.0),
        (f"{MODEL} (module cuts) · {link} · compression lz4:5:byte", "none", 24.0),
        (f"{MODEL} (module cuts) · {link} · compression none", "int8", 12.0),
        (f"{MODEL} (module cuts) · {link} · compression none", "none", 24.0),
    ]
    alone = records[records["codec"] == "none"]
    assert codec_times(alone, summarise(alone), run_info(alone)) is None, "no group has two codecs to compare"
