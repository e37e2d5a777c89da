"""Partitioner schedules: the built-in cyclic and round-robin orders, user schedules, what is refused."""

import pytest

from harness.errors import BadInput
from harness.partition import cyclic, schedule


def test_cyclic_repeats_each_cut_then_moves_on():
    assert list(cyclic([0, 3, 13], 2)) == [(0, 0), (0, 1), (3, 0), (3, 1), (13, 0), (13, 1)]
    with pytest.raises(BadInput, match="cyclic partitioner: repeats 0, expected at least 1"):
        list(cyclic([0], 0))


def test_round_robin_visits_every_cut_once_per_pass():
    assert schedule("round-robin", [0, 3, 13], 2) == [(0, 0), (3, 0), (13, 0), (0, 1), (3, 1), (13, 1)]
    with pytest.raises(BadInput, match="round-robin partitioner: repeats 0, expected at least 1"):
        schedule("round-robin", [0], 0)


def test_user_schedule_from_experiments():
    assert schedule("experiments.tasks:shuffled", [0, 3, 13], 2) == [(3, 0), (13, 0), (0, 0), (0, 1), (13, 1), (3, 1)]


def test_schedules_are_checked():
    with pytest.raises(BadInput, match=r"partitioner 'neurosurgeon': expected one of cyclic"):
        schedule("neurosurgeon", [0], 1)
    with pytest.raises(BadInput, match=r"partitioner 'tests.unit.test_partition:off_the_list' gave \(7, 0\)"):
        schedule("tests.unit.test_partition:off_the_list", [0, 3], 1)
    with pytest.raises(BadInput, match=r"partitioner 'experiments.tasks:nothere': module 'experiments.tasks' has no"):
        schedule("experiments.tasks:nothere", [0], 1)


def off_the_list(cuts, repeats):
    return [(7, 0)]
