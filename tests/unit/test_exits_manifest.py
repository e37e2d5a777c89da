"""A manifest's ``exits``: checked on the traced model before anything starts (one line naming the
file, the line and the field, exit 2), and ``harness exits train`` on the bundled digits: the split
recorded, the backbone untouched by exit training, the files a sweep ships written and read back."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import BadInput
from harness.exits.assemble import assemble
from harness.exits.data import digits_set, stratified_split
from harness.exits.manifest import check_sweepable, plan_for, with_trained_plans
from harness.exits.trainer import Profiles, train_manifest
from harness.exits.weights import load_exit_weights
from harness.manifest import load_manifest
from harness.manifest.cuts import check_models
from harness.model import Granularity, build_split_graph, load_model
from harness.results import ResultsFolder
from harness.results.writer import write_layers

SKIPNET = """\
name: tiny-exits
model:
  name: experiments.models:tiny_skipnet
  granularity: module
link:
  rate: 4MB/s
dataset:
  name: digits
  count: 4
exits:
  template: linear
  split: {by: layers, fraction: 0.5}
  thresholds: [0.5, 1.0]
  training: {backbone_epochs: 2, exit_epochs: 3, seed: 3}
"""
SELECTING = SKIPNET + "  select: {max_accuracy_drop: 0.05}\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exits.yml"
    path.write_text(text)
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(BadInput) as caught:
        check_models(load_manifest(path))
    return str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("thresholds: [0.5, 1.0]", "thresholds: [0.5, 1.5]"), "13: field exits.thresholds[1]: expected a number <= 1"),
        (("thresholds: [0.5, 1.0]", "thresholds: [-0.1]"), "13: field exits.thresholds[0]: expected a number >= 0"),
        (("template: linear", "template: linear\n  per_part: 4"), "12: field exits.per_part: expected a number <= 3"),
        (("template: linear", "template: mlp"), "11: field exits.template: exit template 'mlp': expected one of"),
    ],
)
def test_a_bad_exits_field_is_one_line_at_its_field(tmp_path, change, message):
    path = _write(tmp_path, SKIPNET.replace(*change))
    assert _refusal(path).startswith(f"{path}:{message}")


def test_a_template_that_renders_invalid_python_or_the_wrong_shape_is_refused_at_the_field(tmp_path):
    broken = tmp_path / "broken.py.j2"
    broken.write_text("def build(:\n")
    path = _write(tmp_path, SKIPNET.replace("template: linear", f"template: {broken}"))
    assert _refusal(path) == (
        f"{path}:11: field exits.template: exit template {broken}:1: renders invalid Python (invalid syntax) "
        "(the exit after stem.0)"
    )
    wrong = tmp_path / "wrong.py.j2"
    wrong.write_text(
        "import torch\n\ndef build():\n    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(3))\n"
    )
    path = _write(tmp_path, SKIPNET.replace("template: linear", f"template: {wrong}"))
    assert _refusal(path).startswith(f"{path}:11: field exits.template: exit template '{wrong}': gives [1, 3]")
    assert "expected [1, 10] logits" in _refusal(path)


def test_exits_refuse_a_cut_where_more_than_one_tensor_crosses(tmp_path):
    split = build_split_graph(load_model("experiments.models:tiny_skipnet"), Granularity.NODE)
    multi = next(cut.index for cut in split.cuts if not cut.single_tensor)
    text = SKIPNET.replace("granularity: module", "granularity: node") + f"cuts: [{multi}]\n"
    path = _write(tmp_path, text)
    assert _refusal(path).startswith(
        f"{path}:15: field cuts[0]: exits attach on each side of one cut where one tensor crosses, and model "
        f"'experiments.models:tiny_skipnet' at node granularity sends more than one value at {multi}"
    )


def test_a_model_whose_logits_do_not_match_the_labelled_dataset_is_refused(tmp_path):
    path = _write(tmp_path, SKIPNET.replace("name: digits", "name: easy-hard"))
    assert _refusal(path) == (
        f"{path}:3: field model.name: model 'experiments.models:tiny_skipnet' at module granularity gives 10 logits, "
        "and dataset 'easy-hard' has 4 classes (expected a model with 4 outputs)"
    )


def test_the_cli_refuses_with_exit_2_and_starts_nothing(tmp_path):
    path = _write(tmp_path, SKIPNET.replace("template: linear", "template: mlp"))
    result = CliRunner().invoke(cli, ["exits", "train", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.startswith(f"harness: error: {path}:11: field exits.template:")
    assert not (tmp_path / "out").exists()


def test_the_stratified_split_keeps_each_class_share_and_repeats_for_a_seed():
    digits = digits_set((3, 16, 16))
    assert digits.inputs.shape == (1797, 3, 16, 16) and digits.classes == 10
    first, again = stratified_split(digits.labels, 0.2, 0.2, 7), stratified_split(digits.labels, 0.2, 0.2, 7)
    assert first.record() == again.record()
    parts = [first.train, first.validation, first.test]
    assert sum(len(part) for part in parts) == 1797 and len(np.unique(np.concatenate(parts))) == 1797
    whole = np.bincount(digits.labels.numpy()) / 1797
    for part in parts:
        assert np.abs(np.bincount(digits.labels.numpy()[part]) / len(part) - whole).max() < 0.01


def test_training_writes_the_weights_sources_and_record_and_they_read_back(tmp_path):
    path = _write(tmp_path, SELECTING.replace("template: linear", "template: linear\n  placement: [linear, pareto]"))
    loaded = load_manifest(path)
    trained, pareto = train_manifest(loaded, tmp_path / "out")
    model_folder = tmp_path / "out" / "experiments.models-tiny_skipnet"
    folder = model_folder / "linear"
    assert (trained.folder, trained.placement, pareto.folder) == (folder, "linear", model_folder / "pareto")
    assert sorted(item.name for item in model_folder.iterdir()) == ["backbone.pt", "linear", "pareto"]
    assert sorted(item.name for item in folder.iterdir()) == ["exit1.py", "exit2.py", "exits.pt", "training.json"]
    record = json.loads((folder / "training.json").read_text())
    other = json.loads((pareto.folder / "training.json").read_text())
    assert (record["placement"], other["placement"]) == ("linear", "pareto")
    assert record["backbone_losses"] == other["backbone_losses"], "the backbone is trained once, for both"
    assert record["backbone_digest"]["before_exits"] == record["backbone_digest"]["after_exits"]
    assert len(record["backbone_losses"]) == 2 and len(record["exit_losses"]) == 3
    assert record["split"] == stratified_split(digits_set((3, 32, 32)).labels, 0.2, 0.2, 3).record()
    assert {part: len(values) for part, values in record["accuracy"].items()} == {"validation": 3, "test": 3}
    assert [item["after"] for item in record["plan"]["exits"]] == [name.split(" after ")[1] for name in trained.exits]
    assert "def build()" in (folder / "exit1.py").read_text()
    chosen = record["selection"]
    assert len(chosen["thresholds"]) == 2 and chosen["max_accuracy_drop"] == 0.05
    assert chosen["validation"]["accuracy"] >= chosen["final_validation"] - 0.05 - 1e-9
    assert chosen["final_test"] == pytest.approx(record["accuracy"]["test"][-1], abs=1e-6)
    assert sum(chosen["test"]["shares"]) == pytest.approx(1.0)

    # What the sweep ships and runs: the backbone and the exits of exits.trained.
    model = load_model("experiments.models:tiny_skipnet", str(model_folder / "backbone.pt"))
    split = build_split_graph(model, Granularity.MODULE)
    progressive = assemble(split, plan_for(split, loaded.runs[0].exits), "linear", 10)
    load_exit_weights(folder / "exits.pt", [head.module for head in progressive.heads])
    saved = torch.load(folder / "exits.pt", weights_only=True)
    assert torch.equal(progressive.heads[0].module.state_dict()["2.weight"], saved["exit1.2.weight"])


def test_exit_weights_that_do_not_fit_the_plan_are_refused(tmp_path):
    split = build_split_graph(load_model("experiments.models:tiny_skipnet"), Granularity.MODULE)
    loaded = load_manifest(_write(tmp_path, SKIPNET))
    progressive = assemble(split, plan_for(split, loaded.manifest.exits), "linear", 10)
    torch.save({"exit1.2.weight": torch.zeros(3, 3)}, tmp_path / "bad.pt")
    with pytest.raises(BadInput, match=r"do not fit exit 1: Error\(s\) in loading state_dict"):
        load_exit_weights(tmp_path / "bad.pt", [head.module for head in progressive.heads])


def test_a_zoo_classifier_given_the_datasets_classes_carries_exits(tmp_path):
    resnet = SKIPNET.replace(
        "  name: experiments.models:tiny_skipnet\n", "  name: resnet18\n  input_shape: [1, 3, 32, 32]\n"
    )
    path = _write(tmp_path, resnet)
    assert "model 'resnet18' at module granularity gives 1000 logits, and dataset 'digits' has 10" in _refusal(path)
    check_models(
        load_manifest(_write(tmp_path, resnet.replace("granularity: module", "granularity: module\n  classes: 10")))
    )


def test_a_listed_cut_replaces_the_split_rule_and_only_one_may_be_listed(tmp_path):
    split = build_split_graph(load_model("experiments.models:tiny_skipnet"), Granularity.MODULE)
    single = [cut.index for cut in split.cuts if cut.single_tensor and 1 < cut.index < len(split.layers) - 1]
    loaded = load_manifest(_write(tmp_path, SKIPNET + f"cuts: [{single[0]}]\n"))
    check_models(loaded)
    assert plan_for(split, loaded.manifest.exits, cut=single[0]).cut == single[0]
    path = _write(tmp_path, SKIPNET + f"cuts: [{single[0]}, {single[1]}]\n")
    assert _refusal(path) == (
        f"{path}:15: field cuts: exits are trained and run for one split, and 2 cuts are listed "
        "(expected one cut, or none for the split rule's)"
    )


def test_each_threshold_is_a_run_of_the_trained_backbone_and_exits(tmp_path):
    loaded = load_manifest(_write(tmp_path, SKIPNET + f"  trained: {tmp_path / 'out'}\n"))
    folder = tmp_path / "out" / "experiments.models-tiny_skipnet"
    assert [(run.id, run.threshold) for run in loaded.runs] == [
        ("tiny_skipnet-module-4MBps-none-linear-c0.5", 0.5),
        ("tiny_skipnet-module-4MBps-none-linear-c1", 1.0),
    ]
    assert {(run.model.weights, run.exit_weights) for run in loaded.runs} == {
        (str(folder / "backbone.pt"), str(folder / "linear" / "exits.pt"))
    }
    with pytest.raises(BadInput) as caught:
        check_sweepable(loaded)
    assert str(caught.value) == (
        f"{loaded.rendered.path}:10: field exits: no trained exits for model 'experiments.models:tiny_skipnet' "
        f"({folder / 'backbone.pt'} does not exist): expected `harness exits train {loaded.rendered.path}` first, "
        "or exits.trained naming the folder it wrote"
    )
    train_manifest(loaded, tmp_path / "out")
    check_sweepable(loaded)

    default = load_manifest(_write(tmp_path, SKIPNET))
    assert default.runs[0].exit_weights == "results/tiny-exits-exits/experiments.models-tiny_skipnet/linear/exits.pt"
    both = load_manifest(
        _write(tmp_path, SKIPNET.replace("template: linear", "template: linear\n  placement: [linear, pareto]"))
    )
    assert [(run.exits.placement, run.threshold) for run in both.runs] == [
        (["linear"], 0.5),
        (["linear"], 1.0),
        (["pareto"], 0.5),
        (["pareto"], 1.0),
    ]


def test_a_batch_above_one_is_refused_at_the_input_shape(tmp_path):
    text = SKIPNET.replace("  granularity: module\n", "  granularity: module\n  input_shape: [4, 3, 32, 32]\n")
    path = _write(tmp_path, text)
    assert _refusal(path) == (
        f"{path}:5: field model.input_shape: a batch of 4: progressive inference takes one sample at a time, since "
        "samples of one batch may leave at different exits (expected a batch of 1)"
    )


def test_joint_training_changes_the_backbone_which_each_placement_then_keeps_and_runs(tmp_path):
    joint = SKIPNET.replace("seed: 3}", "seed: 3, mode: joint, loss_weights: [0.5, 0.5, 1.0]}")
    joint = joint.replace("template: linear", "template: linear\n  placement: [linear, pareto]")
    loaded = load_manifest(_write(tmp_path, joint + f"  trained: {tmp_path / 'out'}\n"))
    check_models(loaded)
    train_manifest(loaded, tmp_path / "out")
    model_folder = tmp_path / "out" / "experiments.models-tiny_skipnet"
    first = torch.load(model_folder / "backbone.pt", weights_only=True)
    for placement in ("linear", "pareto"):
        record = json.loads((model_folder / placement / "training.json").read_text())
        assert record["training"]["mode"] == "joint" and len(record["exit_losses"]) == 3
        assert record["backbone_digest"]["before_exits"] != record["backbone_digest"]["after_exits"]
        own = torch.load(model_folder / placement / "backbone.pt", weights_only=True)
        assert set(own) == set(first) and not all(torch.equal(own[name], first[name]) for name in first)
    assert {run.model.weights for run in loaded.runs if run.exits.placement == ["pareto"]} == {
        str(model_folder / "pareto" / "backbone.pt")
    }
    check_sweepable(loaded)
    wrong = _write(tmp_path, joint.replace("[0.5, 0.5, 1.0]", "[0.5, 1.0]"))
    assert _refusal(wrong) == (
        f"{wrong}:15: field exits.training.loss_weights: 2 loss weights: expected one per exit (2 in the linear "
        "placement) and one for the final classifier, with mode: joint"
    )


def _profiled_folder(tmp_path: Path, edge_ms: float, cloud_ms: float) -> Path:
    """A sweep's folder whose per-layer profiles of tiny_skipnet are ``edge_ms`` and ``cloud_ms`` a layer."""
    split = build_split_graph(load_model("experiments.models:tiny_skipnet"), Granularity.MODULE)
    folder = ResultsFolder(tmp_path / "profiled")
    rows = [
        {
            "host": role,
            "role": role,
            "run": "r",
            "model": split.name,
            "layer": layer.name,
            "op": layer.op,
            "median_ns": int(each * 1e6),
            "p95_ns": int(each * 1e6),
            "repeats": 10,
        }
        for role, each in (("edge", edge_ms), ("cloud", cloud_ms))
        for layer in split.layers
    ]
    write_layers(folder, rows)
    return folder.path


def test_the_latency_rule_splits_on_measured_profiles_and_the_sweep_runs_the_trained_cut(tmp_path):
    profiled = _profiled_folder(tmp_path, edge_ms=1.0, cloud_ms=0.8)
    latency = SKIPNET.replace("by: layers, fraction: 0.5", "by: latency").replace("4MB/s", "40MB/s")
    loaded = load_manifest(_write(tmp_path, latency + f"  trained: {tmp_path / 'out'}\n"))
    check_models(loaded)
    with pytest.raises(BadInput, match=r":12: field exits.split.by: the latency rule splits on measured per-layer"):
        train_manifest(loaded, tmp_path / "out")
    train_manifest(loaded, tmp_path / "out", profiles=Profiles(profiled))
    record = json.loads((tmp_path / "out" / "experiments.models-tiny_skipnet" / "linear" / "training.json").read_text())
    # The whole network takes 8.8 ms on the cloud; a head of c layers c ms: cut 8 is the deepest within.
    assert record["plan"]["cut"] == 8
    (run,) = {run.trained_exits.model_dump_json(): run for run in with_trained_plans(loaded).runs}.values()
    assert run.cuts == [8] and run.trained_exits.cut == 8
    assert [run.trained_exits.edge, run.trained_exits.cloud] == [
        [item["cut"] for item in record["plan"]["exits"] if item["part"] == part] for part in ("edge", "cloud")
    ]

    # With the transfer at 40 MB/s (65,536 bytes at cuts 1 to 8: 1.64 ms), cut 7 is the deepest within.
    beyond = latency.replace("by: latency", "by: latency, include_transfer: true")
    loaded = load_manifest(_write(tmp_path, beyond + f"  trained: {tmp_path / 'out2'}\n"))
    train_manifest(loaded, tmp_path / "out2", profiles=Profiles(profiled))
    assert {str(run.cuts) for run in with_trained_plans(loaded).runs} == {"[7]"}

    # On the time axis, positions are profiled ns: the edge part's one exit half way into its 3 ms.
    timed = SKIPNET.replace("template: linear", "template: linear\n  axis: time")
    loaded = load_manifest(_write(tmp_path, timed + f"  trained: {tmp_path / 'out3'}\n"))
    with pytest.raises(BadInput, match=r":12: field exits.axis: the time axis places exits on measured per-layer"):
        train_manifest(loaded, tmp_path / "out3")
    train_manifest(loaded, tmp_path / "out3", profiles=Profiles(profiled))
    record = json.loads(
        (tmp_path / "out3" / "experiments.models-tiny_skipnet" / "linear" / "training.json").read_text()
    )
    edge_exit = record["plan"]["exits"][0]
    assert (record["plan"]["cut"], edge_exit["position"], edge_exit["cut"]) == (3, 1.5e6, 1)


def test_across_places_the_exits_on_the_whole_network_and_each_belongs_to_its_attach_points_part(tmp_path):
    split = build_split_graph(load_model("experiments.models:tiny_skipnet"), Granularity.MODULE)
    within = load_manifest(_write(tmp_path, SKIPNET))
    across = load_manifest(
        _write(tmp_path, SKIPNET.replace("template: linear", "template: linear\n  locality: across"))
    )
    check_models(across)
    # Eleven layers cut at 3 (half of them, snapped to where one tensor crosses): within, one exit
    # half way into each part (1.5 and 4 of 8 layers); across, two at a third and two thirds of the
    # whole (3.67 and 7.33), the first snapped off the cut to 2.
    assert [(item.part, item.cut) for item in plan_for(split, within.runs[0].exits).exits] == [
        ("edge", 1),
        ("cloud", 7),
    ]
    plan = plan_for(split, across.runs[0].exits)
    assert (plan.cut, plan.locality) == (3, "across")
    assert [(item.part, item.cut, round(item.position, 2)) for item in plan.exits] == [
        ("edge", 2, 3.67),
        ("cloud", 7, 7.33),
    ]
