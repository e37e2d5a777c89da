"""An exit plan made runnable: each part cut at its exits into segments of the traced model, and an
exit classifier built for the tensor live at each attach point."""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import BadInput
from harness.exits.progressive import ProgressivePart
from harness.exits.resolve import ExitPlan
from harness.exits.templates import ExitHead, build_exit
from harness.model.graph import SplitGraph


@dataclass(frozen=True)
class ProgressiveModel:
    """The edge part (the model's inputs to what is live at the cut) and the cloud part (from there
    to the output), and every exit's head in plan order."""

    edge: ProgressivePart
    cloud: ProgressivePart
    heads: tuple[ExitHead, ...]

    def memory(self) -> dict[str, tuple[int, int]]:
        """Per part, the bytes of its layers' parameters and buffers, and of its exits': what the
        host of that part holds."""
        return {
            name: (_bytes(part.segments), _bytes(part.exits))
            for name, part in (("edge", self.edge), ("cloud", self.cloud))
        }


def assemble(
    split: SplitGraph, plan: ExitPlan, template: str, num_classes: int, confidence: str = "max_softmax"
) -> ProgressiveModel:
    edge, edge_heads = build_part(split, None, plan.cut, _attach(plan, "edge"), template, num_classes, confidence)
    cloud, cloud_heads = build_part(split, plan.cut, None, _attach(plan, "cloud"), template, num_classes, confidence)
    return ProgressiveModel(edge, cloud, (*edge_heads, *cloud_heads))


def build_part(
    split: SplitGraph,
    start: int | None,
    end: int | None,
    attach: Sequence[int],
    template: str,
    num_classes: int,
    confidence: str = "max_softmax",
) -> tuple[ProgressivePart, tuple[ExitHead, ...]]:
    """The part of ``split`` from cut ``start`` to ``end`` (None: the model's input, its output),
    cut into segments at the ``attach`` cuts, with an exit from ``template`` after each."""
    bounds = [start, *attach, end]
    segments = [split.segment(first, last) for first, last in itertools.pairwise(bounds)]
    heads = build_heads(split, attach, template, num_classes)
    return ProgressivePart(segments, [head.module for head in heads], confidence), heads


def build_heads(split: SplitGraph, attach: Sequence[int], template: str, num_classes: int) -> tuple[ExitHead, ...]:
    """An exit from ``template`` for the one tensor live at each of the ``attach`` cuts."""
    return tuple(build_exit(template, _attach_shape(split, cut), num_classes, split.graph_module) for cut in attach)


def _attach(plan: ExitPlan, part: str) -> list[int]:
    return [item.cut for item in plan.exits if item.part == part]


def _attach_shape(split: SplitGraph, cut: int) -> tuple[int, ...]:
    """The shape of the one tensor live at ``cut``, without the batch."""
    live = split.cut(cut).live
    if len(live) != 1 or live[0].kind != "tensor":
        raise BadInput(f"an exit at cut {cut} reads {len(live)} values: expected exits only where one tensor crosses")
    return tuple(live[0].shape[1:])


def _bytes(modules) -> int:
    tensors = {id(tensor): tensor for tensor in (*modules.parameters(), *modules.buffers())}
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors.values())
