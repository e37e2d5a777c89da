"""The cut table: what crosses each cut, and its price, against figures known from the seed papers."""

import pytest

from harness.model import Granularity, build_split_graph, load_model

# torchvision AlexNet at 224x224, float32: bytes crossing after each layer, numbered as the seeds do.
ALEXNET_BYTES = {
    0: 602_112,
    1: 774_400,
    3: 186_624,
    4: 559_872,
    6: 129_792,
    7: 259_584,
    9: 173_056,
    11: 173_056,
    13: 36_864,
    17: 16_384,
    20: 16_384,
    22: 4_000,
}


def test_alexnet_cuts_are_numbered_as_the_seed_papers(alexnet_split):
    assert [cut.index for cut in alexnet_split.cuts] == list(range(23))
    assert [cut.after for cut in alexnet_split.cuts[1:14]] == [f"features.{i}" for i in range(13)]
    assert [cut.after for cut in alexnet_split.cuts[14:16]] == ["avgpool", "flatten"]
    assert [cut.after for cut in alexnet_split.cuts[16:]] == [f"classifier.{i}" for i in range(7)]


@pytest.mark.parametrize(("index", "expected"), sorted(ALEXNET_BYTES.items()))
def test_alexnet_bytes_crossing_match_the_reference(alexnet_split, index, expected):
    assert alexnet_split.cut(index).bytes == expected


def test_alexnet_parameters_split_between_the_hosts(alexnet_split):
    total = 244_403_360
    for cut in alexnet_split.cuts:
        assert cut.edge_param_bytes + cut.cloud_param_bytes == total
    fc6 = alexnet_split.cut(17).edge_param_bytes - alexnet_split.cut(16).edge_param_bytes
    assert fc6 == (9216 * 4096 + 4096) * 4
    assert alexnet_split.cut(0).edge_param_bytes == 0
    assert alexnet_split.cuts[-1].cloud_param_bytes == 0


def test_flops_come_from_torch_counter(alexnet_split):
    conv1 = alexnet_split.cut(1)
    assert conv1.op == "Conv2d"
    assert conv1.flops == 2 * 64 * 3 * 11 * 11 * 55 * 55
    assert alexnet_split.cut(2).flops == 0
    last = alexnet_split.cuts[-1]
    assert last.cloud_flops == 0
    assert last.edge_flops == sum(cut.flops for cut in alexnet_split.cuts)


def test_first_cut_sends_the_input_and_last_keeps_all_on_edge(alexnet_split):
    first, last = alexnet_split.cuts[0], alexnet_split.cuts[-1]
    assert (first.after, [c.name for c in first.live]) == ("input", ["x"])
    assert [(c.name, c.shape, c.dtype) for c in last.live] == [("classifier_6", (1, 1000), "float32")]


def test_resnet18_nodes_have_cuts_where_two_tensors_cross(resnet18_nodes):
    assert len(resnet18_nodes.cuts) == 70
    assert sum(cut.single_tensor for cut in resnet18_nodes.cuts) == 24
    inside_block = next(cut for cut in resnet18_nodes.cuts if cut.after == "layer1.0.bn2")
    assert sorted(c.name for c in inside_block.live) == ["layer1_0_bn2", "maxpool"]
    assert not inside_block.single_tensor
    after_add = resnet18_nodes.cut(inside_block.index + 1)
    assert (after_add.after, [c.name for c in after_add.live]) == ("add", ["add"])


def test_skip_tensor_is_sent_once_and_only_while_needed(skipnet):
    _, split = skipnet
    live = {cut.after: [c.name for c in cut.live] for cut in split.cuts}
    assert live["stem.2"] == ["stem_2"]
    assert live["body.0"] == ["stem_2", "body_0"]
    assert live["body.2"] == ["stem_2", "body_2"]
    assert live["add"] == ["add"]


def test_module_and_block_granularity(skipnet):
    loaded, _ = skipnet
    module = build_split_graph(loaded, Granularity.MODULE)
    assert [cut.after for cut in module.cuts] == [
        "input",
        *[f"stem.{i}" for i in range(3)],
        *[f"body.{i}" for i in range(3)],
        "add",
        "relu",
        "pool",
        "flatten",
        "head",
    ]
    block = build_split_graph(loaded, Granularity.BLOCK)
    assert [(cut.after, cut.op) for cut in block.cuts] == [
        ("input", "input"),
        ("stem", "Sequential"),
        ("body", "Sequential"),
        ("add", "add"),
        ("relu", "relu"),
        ("pool", "AdaptiveAvgPool2d"),
        ("flatten", "flatten"),
        ("head", "Linear"),
    ]
    assert [len(cut.live) for cut in block.cuts][:3] == [1, 1, 2]


def test_single_tensor_filter_keeps_indices():
    split = build_split_graph(load_model("experiments.models:tiny_skipnet"), Granularity.BLOCK, single_tensor_only=True)
    assert [cut.index for cut in split.cuts] == [0, 1, 3, 4, 5, 6, 7]


def test_yolo_cuts_send_exactly_the_kept_outputs_still_read():
    pytest.importorskip("ultralytics", reason="the yolo extra is not installed")
    split = build_split_graph(load_model("yolov8n"), Granularity.BLOCK, (1, 3, 128, 128))
    live = {cut.after: [c.name for c in cut.live] for cut in split.cuts}
    # layer 4's output is kept for the concat at layer 14, layer 6's for layer 11
    assert live["5"] == ["_4", "_5"]
    assert live["7"] == ["_4", "_6", "_7"]
    assert live["14"] == ["_9", "_12", "_14"]  # 9 is read at layer 20, 12 at layer 17
    assert live["21"] == ["_15", "_18", "_21"]
    names = [c.name for c in split.cuts[-1].live]
    assert names[:3] == ["_22[0]", "_22[1]['boxes']", "_22[1]['scores']"]
