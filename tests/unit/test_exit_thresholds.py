"""Per-exit thresholds picked on the validation part, within an accuracy drop of the final
classifier, and reported on the test part; the offline decision is the hosts' (strictly greater)."""

import math

import pytest
import torch

from harness.errors import BadInput
from harness.exits.thresholds import outcome, select_thresholds


def _logits(confident: list[tuple[int, float]]) -> torch.Tensor:
    """Two-class logits whose softmax gives class ``k`` probability ``p``, one row per sample."""
    rows = [[math.log(p), math.log(1 - p)] if k == 0 else [math.log(1 - p), math.log(p)] for k, p in confident]
    return torch.tensor(rows)


LABELS = torch.zeros(10, dtype=torch.long)
EXIT = _logits([(0, 0.9)] * 6 + [(1, 0.72)] * 2 + [(0, 0.52)] * 2)
"""Six sure and right, two fairly sure and wrong, two unsure and right."""
FINAL = _logits([(0, 0.99)] * 10)


def test_a_sample_leaves_at_the_first_exit_strictly_above_its_threshold():
    second = _logits([(0, 0.8)] * 10)
    passed_on = outcome([EXIT, second, FINAL], LABELS, [0.95, 0.5], "max_softmax")
    assert passed_on.accuracy == 1.0 and passed_on.shares == pytest.approx((0.0, 1.0, 0.0))
    mixed = outcome([EXIT, second, FINAL], LABELS, [0.6, 0.85], "max_softmax")
    assert mixed.accuracy == pytest.approx(0.8) and mixed.shares == pytest.approx((0.8, 0.0, 0.2))
    with pytest.raises(BadInput, match="1 thresholds for 2 exits"):
        outcome([EXIT, second, FINAL], LABELS, [0.5], "max_softmax")


@pytest.mark.parametrize(
    ("drop", "threshold", "accuracy", "shares"),
    [(0.0, 0.75, 1.0, (0.6, 0.4)), (0.1, 0.75, 1.0, (0.6, 0.4)), (0.2, 0.0, 0.8, (1.0, 0.0))],
)
def test_the_lowest_threshold_within_the_drop_is_chosen_and_reported_on_test(drop, threshold, accuracy, shares):
    test_labels = torch.tensor([0] * 9 + [1])
    selection = select_thresholds(([EXIT, FINAL], LABELS), ([EXIT, FINAL], test_labels), drop)
    assert selection.thresholds == (threshold,)
    assert selection.final_validation == 1.0 and selection.final_test == pytest.approx(0.9)
    assert selection.validation.accuracy == pytest.approx(accuracy)
    assert selection.validation.shares == pytest.approx(shares)
    assert selection.test.shares == pytest.approx(shares), "the same samples, the same exits"


def test_a_drop_outside_zero_to_one_is_refused():
    with pytest.raises(BadInput, match=r"max_accuracy_drop 1\.5: expected a share from 0 to 1"):
        select_thresholds(([EXIT, FINAL], LABELS), ([EXIT, FINAL], LABELS), 1.5)
