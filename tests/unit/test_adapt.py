"""Re-planning with hysteresis, on a device, an edge host and a cloud host whose critical link drops:
one switch per change, within three intervals, to a placement that is faster on the degraded link,
and none from measurement noise alone."""

import dataclasses

import numpy as np
import pytest

from harness.errors import BadInput
from harness.partition.placement import Problem, place
from harness.partition.placement.adapt import AdaptPolicy, Replanner

# Six segments (AlexNet-like: a big input, activations that shrink); the device holds only the first
# two segments' parameters, so every placement offloads, straight to the cloud or through the edge.
COMPUTE_S = np.array([[0.004, 0.004, 0.02, 0.02, 0.03, 0.03], [0.002, 0.002, 0.01, 0.01, 0.015, 0.015]])
CUT_BYTES = np.array([600e3, 190e3, 130e3, 37e3, 16e3, 16e3, 4e3])
FAST, SLOW = 10e6, 0.5e6


def problem(rates: np.ndarray) -> Problem:
    return Problem(
        host_names=("rpi", "jetson", "gpu"),
        tiers=np.array([0, 1, 2]),
        memory_bytes=np.array([2.0, np.inf, np.inf]),
        compute_s=np.vstack([COMPUTE_S, COMPUTE_S[1] / 5]),
        segment_bytes=np.ones(6),
        cut_bytes=CUT_BYTES,
        rate=rates,
        delay_s=np.full((3, 3), 0.001),
    )


def truth(degraded: bool) -> np.ndarray:
    """Every link fast; once degraded, the device's link to the cloud (and back) slow."""
    rates = np.full((3, 3), FAST)
    if degraded:
        rates[0, 2] = rates[2, 0] = SLOW
    return rates


def test_one_switch_per_link_change_within_three_intervals_despite_ten_percent_noise():
    change, rounds = 10, 40
    for seed in range(20):
        rng = np.random.default_rng(seed)
        start = place("dp", problem(truth(False))).hosts
        assert start == (0, 0, 2, 2, 2, 2), "the device sends pool-sized tensors straight to the cloud"
        replanner = Replanner(AdaptPolicy(min_gain=0.1, rounds=2), start)
        switches = []
        for number in range(rounds):
            measured = truth(number >= change) * rng.uniform(0.9, 1.1, (3, 3))
            verdict = replanner.consider(problem(measured), place("dp", problem(measured)))
            if verdict.switch:
                switches.append((number, verdict))
        assert len(switches) == 1, (seed, [(number, verdict.best) for number, verdict in switches])
        number, verdict = switches[0]
        assert change <= number < change + 3, "within three intervals of the change"
        degraded = problem(truth(True))
        old_s, new_s = degraded.price(np.array([start, verdict.best]))
        assert new_s <= 0.8 * old_s, "faster on the degraded link by at least a fifth"
        assert 1 in verdict.best, "the new placement goes through the edge host"


def test_a_gain_below_the_margin_never_switches():
    running = place("dp", problem(truth(False))).hosts
    replanner = Replanner(AdaptPolicy(min_gain=0.99, rounds=1), running)
    degraded = problem(truth(True))
    for _ in range(5):
        verdict = replanner.consider(degraded, place("dp", degraded))
        assert not verdict.switch and verdict.best != running and verdict.gain > 0.2
        assert verdict.reason == f"gain {verdict.gain:.1%} below min_gain 99.0%"
    assert replanner.running == running


def test_a_placement_that_can_no_longer_run_is_left_at_once():
    running = place("dp", problem(truth(False))).hosts
    broken = truth(False)
    broken[0, 2] = 0.0
    replanner = Replanner(AdaptPolicy(min_gain=0.1, rounds=5), running)
    verdict = replanner.consider(problem(broken), place("dp", problem(broken)))
    assert verdict.switch and verdict.reason == "the running placement can no longer run"
    assert replanner.running == verdict.best != running


def test_the_running_placement_must_be_beaten_in_rounds_in_a_row():
    running = place("dp", problem(truth(False))).hosts
    replanner = Replanner(AdaptPolicy(min_gain=0.1, rounds=3), running)
    degraded, fast = problem(truth(True)), problem(truth(False))
    outcomes = [
        replanner.consider(case, place("dp", case)) for case in (degraded, degraded, fast, degraded, degraded, degraded)
    ]
    assert [verdict.streak for verdict in outcomes] == [1, 2, 0, 1, 2, 3]
    assert [verdict.switch for verdict in outcomes] == [False] * 5 + [True]


def test_two_challengers_within_noise_of_each_other_do_not_delay_the_switch():
    """The same hosts cut on either side of a free layer price alike; whichever wins a round, the
    running placement was beaten in both, so the second round switches, to the later winner."""
    running = place("dp", problem(truth(False))).hosts
    degraded = problem(truth(True))
    found = place("dp", degraded)
    moved = (*found.hosts[:3], found.hosts[2], *found.hosts[4:])
    assert moved != found.hosts and moved != running
    twin = dataclasses.replace(found, hosts=moved, value_s=found.value_s * 1.01)
    replanner = Replanner(AdaptPolicy(min_gain=0.1, rounds=2), running)
    first, second = replanner.consider(degraded, found), replanner.consider(degraded, twin)
    assert (first.streak, first.switch, second.streak, second.switch) == (1, False, 2, True)
    assert replanner.running == moved


@pytest.mark.parametrize(("min_gain", "rounds"), [(-0.1, 1), (1.0, 1), (0.1, 0)])
def test_a_policy_outside_its_range_is_refused(min_gain, rounds):
    with pytest.raises(BadInput, match="expected 0 <= min_gain < 1, rounds >= 1"):
        AdaptPolicy(min_gain, rounds)
