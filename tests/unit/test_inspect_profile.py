"""`harness model inspect` and `harness model profile` through the CLI."""

import json

import torch
from click.testing import CliRunner

from harness.cli import cli
from harness.model import Granularity, build_split_graph, load_model
from harness.model.profile import profile


def test_inspect_json_shows_the_reference_cuts():
    result = CliRunner().invoke(cli, ["model", "inspect", "alexnet", "--json"])
    assert result.exit_code == 0, result.stderr
    table = json.loads(result.stdout)
    assert (table["model"], table["granularity"], table["tracer"]) == ("alexnet", "module", "fx")
    cuts = {cut["after"]: cut for cut in table["cuts"]}
    assert cuts["features.12"]["bytes"] == 36_864
    assert cuts["features.12"]["op"] == "MaxPool2d"
    assert cuts["features.0"]["bytes"] == 774_400
    assert cuts["features.0"]["live"] == [
        {"name": "features_0", "kind": "tensor", "shape": [1, 64, 55, 55], "dtype": "float32", "nbytes": 774_400}
    ]
    assert all(cut["single_tensor"] and cut["tensors"] == 1 for cut in table["cuts"])


def test_inspect_table_for_people():
    result = CliRunner().invoke(cli, ["model", "inspect", "experiments.models:tiny_skipnet", "-g", "block"])
    assert result.exit_code == 0, result.stderr
    assert "8 cuts at block granularity, input 1,3,32,32" in result.stdout
    body_row = next(line for line in result.stdout.splitlines() if "│ body " in line)
    assert "stem_2 1x16x32x32 float32" in body_row
    assert "131,072" in body_row  # two 16x32x32 float32 tensors cross: the skip and the body's output


def test_profile_times_every_layer_functional_ones_included():
    split = build_split_graph(load_model("experiments.models:tiny_skipnet"), Granularity.MODULE)
    report = profile(split, repeats=5, warmup=1)
    assert [layer.name for layer in report.layers] == [cut.after for cut in split.cuts[1:]]
    add = next(layer for layer in report.layers if layer.name == "add")
    assert add.op == "add" and add.median_ms > 0
    assert all(0 < layer.median_ms <= layer.p95_ms for layer in report.layers)
    assert {layer.side for layer in report.layers} == {"edge"}


def test_profile_at_a_cut_times_both_segments():
    result = CliRunner().invoke(
        cli,
        [
            "model",
            "profile",
            "experiments.models:tiny_skipnet",
            "--cut",
            "4",
            "--repeats",
            "3",
            "--threads",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["cut"], report["repeats"], report["threads"]) == (4, 3, 1)
    sides = [(layer["index"], layer["side"]) for layer in report["layers"]]
    assert sides[:5] == [(1, "edge"), (2, "edge"), (3, "edge"), (4, "edge"), (5, "cloud")]
    assert all(layer["median_ms"] > 0 for layer in report["layers"])
    torch.set_num_threads(1)


def test_profile_hooks_leave_the_segment_results_unchanged():
    from harness.model.profile import instrument

    split = build_split_graph(load_model("experiments.models:tiny_skipnet"), Granularity.NODE)
    head = split.head(split.cuts[-1].index)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(instrument(head.graph_module)(x)[0], head(x)[0])
