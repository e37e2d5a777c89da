"""Exit classifiers rendered from templates: the built-ins, a user's Jinja2 file and a factory,
each checked by the logits it gives; a template that renders bad Python or gives the wrong shape
is refused in one line."""

import pytest
import torch

from harness.errors import BadInput
from harness.exits.templates import build_exit, built_in_templates
from harness.model import Granularity, build_split_graph, load_model

IN_SHAPE = (64, 8, 8)


@pytest.mark.parametrize("template", ["linear", "conv-linear"])
def test_built_in_exits_give_one_row_of_logits_and_keep_their_rendered_source(template):
    head = build_exit(template, IN_SHAPE, 10)
    assert head.module(torch.randn(3, *IN_SHAPE)).shape == (3, 10)
    assert "nn.Linear(64, 10)" in head.source and "{{" not in head.source
    assert "64x8x8" in head.source, "the comment names the attach point's shape"


def test_a_users_jinja_template_is_rendered_with_the_attach_point(tmp_path):
    path = tmp_path / "wide.py.j2"
    path.write_text(
        "from torch import nn\n\n\ndef build():\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear({{ in_shape[0] * in_shape[1] * in_shape[2] }}, "
        "{{ num_classes }}))\n"
    )
    head = build_exit(str(path), IN_SHAPE, 7)
    assert "nn.Linear(4096, 7)" in head.source
    assert head.module(torch.zeros(1, *IN_SHAPE)).shape == (1, 7)


def test_a_factory_from_experiments_is_called_with_the_same_values():
    head = build_exit("experiments.exits:pooled_exit", IN_SHAPE, 10)
    assert head.source == "experiments.exits:pooled_exit"
    assert head.module(torch.zeros(2, *IN_SHAPE)).shape == (2, 10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("def build(:\n    pass\n", r"^exit template {path}:1: renders invalid Python \("),
        ("x = 1\n", r"^exit template {path}: expected the rendered source to define build\(\)"),
        (
            "from torch import nn\n\n\ndef build():\n    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), "
            "nn.Linear({{ channels }}, 5))\n",
            r"^exit template '{path}': gives \[1, 5\] for an input of \[64, 8, 8\]; expected \[1, 10\] logits$",
        ),
        ("{{ channel }}\n", r"^exit template {path}: cannot be rendered \('channel' is undefined\)$"),
    ],
)
def test_a_bad_template_is_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "exit.py.j2"
    path.write_text(text)
    with pytest.raises(BadInput, match=message.format(path=path)):
        build_exit(str(path), IN_SHAPE, 10)


def test_an_unknown_template_names_the_built_ins():
    assert built_in_templates() == ["conv-linear", "linear", "replicate"]
    with pytest.raises(
        BadInput, match=r"^exit template 'branchy': expected one of conv-linear, linear, replicate, a Jinja2 file"
    ):
        build_exit("branchy", IN_SHAPE, 10)


@pytest.mark.parametrize(("name", "parts"), [("resnet18", ["Linear"]), ("mobilenet_v2", ["Dropout", "Linear"])])
def test_replicate_copies_the_networks_own_classifier_resized_with_fresh_weights(name, parts):
    model = load_model(name, None, 10).module
    head = build_exit("replicate", IN_SHAPE, 10, model)
    assert head.module(torch.randn(2, *IN_SHAPE)).shape == (2, 10)
    assert [type(part).__name__ for part in head.module] == ["AdaptiveAvgPool2d", "Flatten", *parts]
    linear = next(module for module in head.module if isinstance(module, torch.nn.Linear))
    assert linear.in_features == 64 and linear.out_features == 10
    original = next(module for module in model.modules() if isinstance(module, torch.nn.Linear))
    assert linear.weight.data_ptr() != original.weight.data_ptr(), "a copy, not the network's own weights"
    assert head.source.startswith("# replicate: the network's") and "AdaptiveAvgPool2d" in head.source
    traced = build_split_graph(load_model(name, None, 10), Granularity.MODULE).graph_module
    assert repr(build_exit("replicate", IN_SHAPE, 10, traced).module) == repr(head.module), (
        "the same from a traced model"
    )
    with pytest.raises(BadInput, match=r"^exit template 'replicate': the model has no Linear classifier to copy$"):
        build_exit("replicate", IN_SHAPE, 10, torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1)))


@pytest.fixture(scope="module")
def alexnet_plan():
    from harness.exits.resolve import SplitRule, plan_exits
    from harness.model import Granularity, build_split_graph, load_model

    split = build_split_graph(load_model("alexnet", None), Granularity.MODULE)
    return split, plan_exits(split, SplitRule("layers", 0.5), "flops", 2, "flops")


def test_at_threshold_one_the_parts_give_the_plain_models_output_bit_for_bit(alexnet_plan):
    from harness.exits.assemble import assemble

    split, plan = alexnet_plan
    model = assemble(split, plan, "linear", 1000)
    torch.manual_seed(0)
    sample = torch.randn(1, 3, 224, 224)
    edge = model.edge(1.0, sample)
    assert (edge.exit, edge.logits) == (None, None), "no exit is ever more confident than 1"
    cloud = model.cloud(1.0, *edge.live)
    with torch.no_grad():
        expected = split.graph_module(sample)
    assert cloud.exit is None and torch.equal(cloud.live, expected)


def test_at_threshold_zero_every_sample_leaves_at_the_first_exit_before_the_cut(alexnet_plan):
    from harness.exits.assemble import assemble

    split, plan = alexnet_plan
    model = assemble(split, plan, "linear", 1000)
    outcome = model.edge(0.0, torch.randn(1, 3, 224, 224))
    assert (outcome.exit, outcome.live) == (1, None) and outcome.logits.shape == (1, 1000)
    assert 0 < outcome.confidence <= 1
    assert [head.source.count("nn.Linear(64, 1000)") for head in model.heads[:1]] == [1], "exit 1 reads features.0"
    with pytest.raises(BadInput, match=r"^a batch of 2: progressive inference takes one sample at a time$"):
        model.edge(0.5, torch.randn(2, 3, 224, 224))


def test_confidence_measures_agree_on_a_sure_and_an_unsure_answer():
    from harness.exits.progressive import CONFIDENCE

    unsure, sure = torch.zeros(1, 4), torch.tensor([[50.0, 0.0, 0.0, 0.0]])
    assert CONFIDENCE["max_softmax"](unsure).item() == pytest.approx(0.25)
    assert CONFIDENCE["entropy"](unsure).item() == pytest.approx(0.0, abs=1e-6)
    assert CONFIDENCE["margin"](unsure).item() == pytest.approx(0.0)
    for measure in CONFIDENCE.values():
        assert measure(sure).item() == pytest.approx(1.0, abs=1e-6)
    two = torch.log(torch.tensor([[0.6, 0.3, 0.1]]))
    assert CONFIDENCE["margin"](two).item() == pytest.approx(0.3)


def test_each_part_holds_its_layers_and_its_exits(alexnet_plan):
    from harness.exits.assemble import assemble
    from harness.partition.situation import layer_param_bytes

    split, plan = alexnet_plan
    memory = assemble(split, plan, "linear", 1000).memory()
    layers = layer_param_bytes(split)
    assert memory["edge"][0] == sum(layers[: plan.cut]) == 4 * 2_469_696, "AlexNet's five convolutions"
    assert memory["cloud"][0] == sum(layers[plan.cut :])
    assert memory["edge"][1] == 4 * ((64 + 1) * 1000 + (192 + 1) * 1000), "exits after conv1 and conv2"


def test_the_exit_taken_is_the_first_the_offline_logits_call_confident_and_later_layers_never_run(alexnet_plan):
    """Every exit's logits computed offline from one full pass; the part must leave where they say,
    and the segments after that exit must not run at all. Each sample's thresholds come from its
    own offline scores (0: the first exit; the first exit's score: the second, where it scores
    higher; the highest score: neither, since an exit needs strictly more)."""
    from harness.exits.assemble import assemble
    from harness.exits.progressive import max_softmax

    split, plan = alexnet_plan
    torch.manual_seed(0)
    model = assemble(split, plan, "conv-linear", 10)
    with torch.no_grad():
        model.edge.exits[1][-1].weight.mul_(20)  # a sharper second exit, more confident than the first on some samples
    calls = [0] * len(model.edge.segments)
    for index, segment in enumerate(model.edge.segments):
        segment.register_forward_hook(lambda *_, index=index: calls.__setitem__(index, calls[index] + 1))
    generator = torch.Generator().manual_seed(1)
    taken = set()
    for _ in range(20):
        sample = torch.randn(1, 3, 224, 224, generator=generator)
        with torch.inference_mode():
            first = model.edge.segments[0](sample)
            second = model.edge.segments[1](*first)
            pairs = zip(model.edge.exits, (first, second), strict=True)
            scores = [float(max_softmax(head(live[0]))[0]) for head, live in pairs]
        thresholds = [0.0, max(scores)] + ([scores[0]] if scores[1] > scores[0] else [])
        for threshold in thresholds:
            expected = next((number for number, score in enumerate(scores, start=1) if score > threshold), None)
            calls[:] = [0] * len(calls)
            outcome = model.edge(threshold, sample)
            assert outcome.exit == expected, (threshold, scores)
            ran = {1: [1, 0, 0], 2: [1, 1, 0], None: [1, 1, 1]}[expected]
            assert calls == ran, f"threshold {threshold}: segments run {calls}"
            taken.add(expected)
        if taken == {1, 2, None}:
            break
    assert taken == {1, 2, None}, "the thresholds exercise both exits and the whole part"
