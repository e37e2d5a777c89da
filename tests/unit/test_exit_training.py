"""Exits trained on a frozen backbone: the backbone's weights stay exactly as they were, and the
trained exits answer easy samples early far more often than hard ones."""

import torch

from harness.exits.assemble import assemble
from harness.exits.data import easy_hard_set
from harness.exits.resolve import SplitRule, plan_exits
from harness.exits.training import backbone_digest, train_backbone, train_exits
from harness.model import Granularity, build_split_graph, load_model

CLASSES = 4
"""The first exit reads a linear function of the input's channel means (a convolution, pooled), so
its classes must be told apart by colour alone: four random colours in three channels can be."""


def test_the_easy_hard_set_is_seeded_and_half_hard():
    first, again = easy_hard_set(40, (3, 8, 8), CLASSES, seed=4), easy_hard_set(40, (3, 8, 8), CLASSES, seed=4)
    assert torch.equal(first.inputs, again.inputs) and torch.equal(first.labels, again.labels)
    assert int(first.hard.sum()) == 20 and sorted(set(first.labels.tolist())) == list(range(CLASSES))
    assert not torch.equal(first.inputs, easy_hard_set(40, (3, 8, 8), CLASSES, seed=5).inputs)


def test_trained_exits_answer_easy_samples_early_and_leave_the_backbone_alone():
    torch.manual_seed(0)
    split = build_split_graph(load_model("experiments.models:tiny_skipnet", None), Granularity.MODULE)
    plan = plan_exits(split, SplitRule("layers", 0.5), "linear", 1)
    model = assemble(split, plan, "linear", CLASSES)
    before = backbone_digest(model)
    train = easy_hard_set(600, (3, 32, 32), CLASSES, seed=1)
    losses = train_exits(model, train.inputs, train.labels, epochs=40)
    assert backbone_digest(model) == before, "the backbone is frozen"
    assert losses[-1] < 0.5 * losses[0], losses

    test = easy_hard_set(200, (3, 32, 32), CLASSES, seed=2)
    left = [model.edge(0.9, sample.unsqueeze(0)).exit == 1 for sample in test.inputs]
    left = torch.tensor(left)
    easy, hard = float(left[~test.hard].float().mean()), float(left[test.hard].float().mean())
    print(f"left at exit 1 at c_thr 0.9: easy {easy:.2f}, hard {hard:.2f}")
    assert easy >= 2 * hard and easy > 0.2, (easy, hard)


def test_inception_trains_at_an_input_its_auxiliary_classifier_cannot_take_and_keeps_it_untouched():
    module = load_model("inception_v3", None, 10).module
    before = {name: tensor.clone() for name, tensor in module.state_dict().items()}
    losses = train_backbone(module, torch.randn(4, 3, 96, 96), torch.tensor([0, 1, 2, 3]), 1, batch=4)
    after = module.state_dict()
    assert len(losses) == 1 and set(after) == set(before) and not module.training
    assert all(torch.equal(after[name], before[name]) for name in before if name.startswith("AuxLogits."))
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
