"""Per-exit confidence thresholds chosen on the validation part and reported on the test part, so
no threshold is tuned on the samples it is judged by (a mistake the field's tools make).

Offline, from every exit's logits for every sample: a sample leaves at the first exit whose
confidence is strictly greater than that exit's threshold, else at the final classifier, exactly as
``ProgressivePart`` decides on the hosts. ``select_thresholds`` goes through the exits in order and
gives each the lowest threshold of the grid that keeps the accuracy within ``max_accuracy_drop``
of the final classifier's, the exits after it not yet leaving: early exits are filled first, since
they save the most, and no later choice can undo the bound, because each is checked with all the
earlier ones in place.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from harness.errors import BadInput
from harness.exits.progressive import CONFIDENCE

GRID = tuple(round(0.05 * step, 2) for step in range(0, 21))
"""0, 0.05, ..., 1.0: 1.0 never leaves (confidence is at most 1)."""


@dataclass(frozen=True)
class Outcome:
    """Where the samples left (a share per exit, then the final classifier) and the accuracy."""

    accuracy: float
    shares: tuple[float, ...]


@dataclass(frozen=True)
class Selection:
    thresholds: tuple[float, ...]
    max_accuracy_drop: float
    validation: Outcome
    test: Outcome
    final_validation: float
    final_test: float


def outcome(
    logits: Sequence[torch.Tensor], labels: torch.Tensor, thresholds: Sequence[float], confidence: str
) -> Outcome:
    """Progressive inference over ``logits`` (each exit's, then the final classifier's)."""
    if len(thresholds) != len(logits) - 1:
        raise BadInput(f"{len(thresholds)} thresholds for {len(logits) - 1} exits: expected one per exit")
    measure = CONFIDENCE[confidence]
    count = len(labels)
    taken = torch.full((count,), len(logits) - 1, dtype=torch.long)
    undecided = torch.ones(count, dtype=torch.bool)
    for number, (exit_logits, threshold) in enumerate(zip(logits[:-1], thresholds, strict=True)):
        leaves = undecided & (measure(exit_logits) > threshold)
        taken[leaves] = number
        undecided &= ~leaves
    stacked = torch.stack([item.argmax(dim=1) for item in logits])
    predicted = stacked[taken, torch.arange(count)]
    shares = torch.bincount(taken, minlength=len(logits)).double() / count
    return Outcome(float((predicted == labels).double().mean()), tuple(float(share) for share in shares))


def select_thresholds(
    validation: tuple[Sequence[torch.Tensor], torch.Tensor],
    test: tuple[Sequence[torch.Tensor], torch.Tensor],
    max_accuracy_drop: float,
    confidence: str = "max_softmax",
    grid: Sequence[float] = GRID,
) -> Selection:
    """Thresholds picked on ``validation`` (logits per exit then final, labels), reported on ``test``."""
    if not 0 <= max_accuracy_drop <= 1:
        raise BadInput(f"max_accuracy_drop {max_accuracy_drop}: expected a share from 0 to 1")
    logits, labels = validation
    final = float((logits[-1].argmax(dim=1) == labels).double().mean())
    exits = len(logits) - 1
    chosen = [1.0] * exits
    for number in range(exits):
        for threshold in sorted(grid):
            trial = [*chosen[:number], threshold, *chosen[number + 1 :]]
            if outcome(logits, labels, trial, confidence).accuracy >= final - max_accuracy_drop - 1e-12:
                chosen[number] = threshold
                break
    test_logits, test_labels = test
    return Selection(
        thresholds=tuple(chosen),
        max_accuracy_drop=max_accuracy_drop,
        validation=outcome(logits, labels, chosen, confidence),
        test=outcome(test_logits, test_labels, chosen, confidence),
        final_validation=final,
        final_test=float((test_logits[-1].argmax(dim=1) == test_labels).double().mean()),
    )
