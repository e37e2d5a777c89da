"""Progressive inference through one part: its segments between exits, each exit tried in order,
the first confident enough answering, and only a sample no exit takes running the whole part.

Exits really run where they sit, and a sample that leaves stops there: the layers after its exit
never run for it, which is what makes an early exit cheaper (simulating exits after one full
forward pass, as some tools do, measures nothing of that). A batch is taken one sample at a time,
since samples of one batch may leave at different exits.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from harness.errors import BadInput
from harness.model.segments import Segment


def max_softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=-1).max(dim=-1).values


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """One minus the normalised entropy of the softmax: 1 for a one-hot answer, 0 for a uniform one."""
    probabilities = torch.softmax(logits, dim=-1)
    spread = -(probabilities * torch.log(probabilities.clamp_min(1e-30))).sum(dim=-1)
    return 1 - spread / math.log(logits.shape[-1])


def margin(logits: torch.Tensor) -> torch.Tensor:
    """The softmax's top probability minus its second."""
    top = torch.softmax(logits, dim=-1).topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


CONFIDENCE = {"max_softmax": max_softmax, "entropy": entropy, "margin": margin}


@dataclass(frozen=True)
class PartOutcome:
    """Where a sample left the part: ``exit`` (from 1) with its logits, or None with what is live
    at the part's end (the model's output for the last part)."""

    exit: int | None
    confidence: float | None
    logits: torch.Tensor | None
    live: tuple | torch.Tensor | None


class ProgressivePart(nn.Module):
    """A part cut at its exits: ``segments[i]`` runs up to exit ``i`` (the last one to the part's
    end), ``exits[i]`` reads the one tensor live there."""

    def __init__(self, segments: Sequence[Segment], exits: Sequence[nn.Module], confidence: str = "max_softmax"):
        super().__init__()
        if len(segments) != len(exits) + 1:
            raise BadInput(f"{len(segments)} segments for {len(exits)} exits: expected one more segment than exits")
        if confidence not in CONFIDENCE:
            raise BadInput(f"confidence {confidence!r}: expected one of {', '.join(CONFIDENCE)}")
        self.segments = nn.ModuleList(segments)
        self.exits = nn.ModuleList(exits)
        self.confidence = CONFIDENCE[confidence]

    def forward(self, threshold: float, *inputs) -> PartOutcome:
        """One sample through the part: it leaves at the first exit whose confidence is strictly
        greater than ``threshold`` (so 1.0 never leaves early, 0 leaves at the first exit)."""
        if not 0 <= threshold <= 1:
            raise BadInput(f"confidence threshold {threshold}: expected a number from 0 to 1")
        batch = next((value.shape[0] for value in inputs if isinstance(value, torch.Tensor) and value.dim()), 1)
        if batch != 1:
            raise BadInput(f"a batch of {batch}: progressive inference takes one sample at a time")
        with torch.inference_mode():
            live = self.segments[0](*inputs)
            for number, (exit_head, segment) in enumerate(zip(self.exits, self.segments[1:], strict=True), start=1):
                logits = exit_head(_single(live, number))
                score = float(self.confidence(logits)[0])
                if score > threshold:
                    return PartOutcome(number, score, logits, None)
                live = segment(*live) if isinstance(live, tuple) else segment(live)
        return PartOutcome(None, None, None, live)

    def first_confident(
        self, threshold: float, heads: Sequence[nn.Module], inputs: Sequence[torch.Tensor]
    ) -> PartOutcome | None:
        """Exits attached before this part (``heads``, each on its own input) tried in order with
        this part's confidence measure: the first more confident than ``threshold`` (numbered from 1
        among them), or None."""
        with torch.inference_mode():
            for number, (head, tensor) in enumerate(zip(heads, inputs, strict=True), start=1):
                logits = head(tensor)
                score = float(self.confidence(logits)[0])
                if score > threshold:
                    return PartOutcome(number, score, logits, None)
        return None

    def carry(self, *inputs) -> tuple[tuple | torch.Tensor, list[torch.Tensor]]:
        """One sample through the whole part without trying its exits: what is live at the part's
        end, and the tensor each exit reads, to be sent on and tried where the exits run."""
        with torch.inference_mode():
            live = self.segments[0](*inputs)
            carried = []
            for number, segment in enumerate(self.segments[1:], start=1):
                carried.append(_single(live, number))
                live = segment(*live) if isinstance(live, tuple) else segment(live)
        return live, carried


def _single(live, number: int) -> torch.Tensor:
    """The one tensor live at an exit (exits attach only where one tensor crosses)."""
    tensors = [value for value in (live if isinstance(live, tuple) else (live,)) if isinstance(value, torch.Tensor)]
    if len(tensors) != 1:
        raise BadInput(f"exit {number} reads {len(tensors)} tensors: expected exits only where one tensor crosses")
    return tensors[0]
