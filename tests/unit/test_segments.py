"""A model cut at several points at once: consecutive segments, chained, give the model's output exactly."""

import random

import pytest
import torch
from torch.utils import _pytree as pytree

from harness.errors import BadInput
from harness.model import Granularity, build_split_graph, load_model


def _run_chain(segments, example: torch.Tensor):
    values = (example.clone(),)
    for segment in segments:
        values = segment(*values)
    return values


def _called(segment) -> list[str]:
    return [node.name for node in segment.graph_module.graph.nodes if node.op in ("call_module", "call_function")]


def _same(expected, actual) -> bool:
    left, right = pytree.tree_leaves(expected), pytree.tree_leaves(actual)
    return len(left) == len(right) and all(torch.equal(a, b) for a, b in zip(left, right, strict=True))


@pytest.mark.parametrize(
    ("model", "granularity", "shape"),
    [
        ("experiments.models:tiny_skipnet", Granularity.NODE, None),
        ("resnet18", Granularity.NODE, (1, 3, 64, 64)),
        ("googlenet", Granularity.MODULE, (1, 3, 64, 64)),
        ("densenet121", Granularity.MODULE, (1, 3, 64, 64)),
    ],
)
def test_chained_segments_are_exact_and_share_no_work(model, granularity, shape):
    """Three random cut sets per model, multi-tensor cuts included (a skip connection spanning several
    segments passes through each): the chain equals the model bit for bit, and every layer runs once."""
    loaded = load_model(model)
    split = build_split_graph(loaded, granularity, shape)
    example = torch.randn(split.input_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = loaded.module(example.clone())
        whole = _called(split.segment(None, None))
        chooser = random.Random(model)
        for count in (1, 2, 4):
            cuts = sorted(chooser.sample([cut.index for cut in split.cuts], count))
            segments = split.segments(cuts)
            assert len(segments) == count + 1
            assert _same(reference, _run_chain(segments, example)), cuts
            assert sorted(name for segment in segments for name in _called(segment)) == sorted(whole), cuts
            for index, cut in enumerate(cuts):
                live = _run_chain(segments[: index + 1], example)
                assert _same(split.head(cut)(example.clone()), live), (cuts, cut)
                assert len(live) == sum(1 for _ in split.cut(cut).live), "each live value crosses once"


def test_one_cut_gives_head_and_tail(alexnet_split):
    head, tail = alexnet_split.segments([13])
    assert _called(head) == _called(alexnet_split.head(13))
    assert _called(tail) == _called(alexnet_split.tail(13))


@pytest.mark.parametrize("cuts", [[5, 3], [3, 3], [3, 99]])
def test_cuts_out_of_order_or_range_are_refused(alexnet_split, cuts):
    with pytest.raises(BadInput) as error:
        alexnet_split.segments(cuts)
    if 99 in cuts:
        assert str(error.value).startswith("model 'alexnet' has no cut 99 at module granularity; valid: 0, 1, 2")
    else:
        assert str(error.value) == f"cuts {cuts}: expected increasing cut indices, each once"
