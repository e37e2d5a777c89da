"""Every cut is exact; a segment that is not gets reported with its cut."""

import json

import pytest
import torch
from click.testing import CliRunner

from harness.cli import cli
from harness.model import Granularity, build_split_graph, load_model
from harness.model.verify import verify

# The list, at a small input so the suite stays short; full-size runs are in the README.
MODULE_GRANULARITY = [
    "alexnet",
    "vgg11",
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "googlenet",
    "densenet121",
    "efficientnet_b0",
]


@pytest.mark.parametrize("model", MODULE_GRANULARITY)
def test_verify_passes_at_module_granularity(model):
    result = CliRunner().invoke(cli, ["model", "verify", model, "--input", "1,3,64,64"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("verified ") and f"cuts of {model} at module granularity" in result.stdout


def test_verify_resnet18_at_node_granularity():
    result = CliRunner().invoke(cli, ["model", "verify", "resnet18", "-g", "node", "--input", "1,3,64,64", "--json"])
    assert result.exit_code == 0, result.output
    assert '"checked": 70' in result.stdout
    assert '"failed": []' in result.stdout


def test_verify_yolov8n_at_block_granularity():
    pytest.importorskip("ultralytics", reason="the yolo extra is not installed")
    result = CliRunner().invoke(cli, ["model", "verify", "yolov8n", "-g", "block", "--input", "1,3,128,128"])
    assert result.exit_code == 0, result.output
    assert "verified 24 cuts of yolov8n" in result.stdout


def test_export_fallback_is_exact():
    loaded = load_model("tests.fixtures.models:shape_branch")
    split = build_split_graph(loaded, Granularity.NODE, (1, 3, 96, 96))
    assert split.tracer == "export"
    report = verify(split, loaded.module)
    assert len(report.checks) == len(split.cuts) > 3
    assert report.failures == []


def test_wrong_segment_is_reported_with_its_cut(skipnet, monkeypatch):
    loaded, split = skipnet
    honest_tail = split.tail

    def tail_that_skips_a_layer(index):
        tail = honest_tail(index)
        if index != 5:
            return tail
        return lambda *live: tail(*live) + 1.0

    monkeypatch.setattr(split, "tail", tail_that_skips_a_layer)
    report = verify(split, loaded.module)
    assert [check.cut for check in report.failures] == [5]
    assert report.failures[0].max_abs_diff == pytest.approx(1.0)


def test_head_and_tail_are_modules_that_share_no_work(alexnet_split):
    head, tail = alexnet_split.head(13), alexnet_split.tail(13)
    assert isinstance(head, torch.nn.Module) and isinstance(tail, torch.nn.Module)
    head_nodes = {n.name for n in head.graph_module.graph.nodes if n.op == "call_module"}
    tail_nodes = {n.name for n in tail.graph_module.graph.nodes if n.op == "call_module"}
    assert head_nodes == {f"features_{i}" for i in range(13)}
    assert not head_nodes & tail_nodes
    head_bytes = sum(p.numel() * p.element_size() for p in head.parameters())
    assert head_bytes == alexnet_split.cut(13).edge_param_bytes
    live = head(torch.randn(1, 3, 224, 224))
    assert [tuple(t.shape) for t in live] == [(1, 256, 6, 6)]


def test_arguments_left_at_their_defaults_are_constants_of_the_trace():
    """A default ``mask=None`` kept as a graph input would be live, and unsendable, at every cut up to
    its last use: each such cut would be withheld without a word."""
    result = CliRunner().invoke(cli, ["model", "inspect", "tests.fixtures.models:optional_mask", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["positions"], record["withheld"]) == (6, [])
    assert [cut["index"] for cut in record["cuts"]] == [0, 1, 2, 3, 4, 5]
    verified = CliRunner().invoke(cli, ["model", "verify", "tests.fixtures.models:optional_mask"])
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.splitlines() == [
        "verified 6 cuts of tests.fixtures.models:optional_mask at module granularity: tail(head(x)) matches "
        "the unsplit output at every cut (largest difference 0)"
    ]


def test_inspect_and_verify_say_which_positions_are_withheld_and_why():
    name = "tests.fixtures.models:carries_dtype"
    line = "1 of 5 cut positions withheld: a value that cannot be sent is live there (getattr_1: dtype at 1)"
    inspected = CliRunner().invoke(cli, ["model", "inspect", name])
    assert inspected.exit_code == 0, inspected.output
    assert line in inspected.stdout
    record = json.loads(CliRunner().invoke(cli, ["model", "inspect", name, "--json"]).stdout)
    assert record["withheld"] == [{"cut": 3, "live": "getattr_1: dtype"}]
    verified = CliRunner().invoke(cli, ["model", "verify", name])
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.splitlines()[1:] == [line]


def test_verify_warns_when_the_output_does_not_depend_on_the_input():
    result = CliRunner().invoke(cli, ["model", "verify", "tests.fixtures.models:zero_output"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "warning: the output does not depend on the input (two different inputs gave the same output), so "
        "matching it proves little: give trained weights (--weights) or a model whose output varies"
    )
    record = json.loads(
        CliRunner().invoke(cli, ["model", "verify", "tests.fixtures.models:zero_output", "--json"]).stdout
    )
    assert record["input_independent"] is True
    assert "warning" not in CliRunner().invoke(cli, ["model", "verify", "tests.fixtures.models:optional_mask"]).stdout
