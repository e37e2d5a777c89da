"""An exit plan made runnable: each part cut at its exits into segments of the traced model, and an
exit classifier built for the tensor live at each attach point."""

import itertools
from dataclasses import dataclass

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
    heads: list[ExitHead] = []
    parts = []
    for part, (start, end) in (("edge", (None, plan.cut)), ("cloud", (plan.cut, None))):
        cuts = [item.cut for item in plan.exits if item.part == part]
        bounds = [start, *cuts, end]
        segments = [split.segment(first, last) for first, last in itertools.pairwise(bounds)]
        part_heads = [build_exit(template, _attach_shape(split, cut), num_classes) for cut in cuts]
        heads += part_heads
        parts.append(ProgressivePart(segments, [head.module for head in part_heads], confidence))
    return ProgressiveModel(parts[0], parts[1], tuple(heads))


def _attach_shape(split: SplitGraph, cut: int) -> tuple[int, ...]:
    """The shape of the one tensor live at ``cut``, without the batch."""
    (leaf,) = split.cut(cut).live
    return tuple(leaf.shape[1:])


def _bytes(modules) -> int:
    tensors = {id(tensor): tensor for tensor in (*modules.parameters(), *modules.buffers())}
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors.values())
