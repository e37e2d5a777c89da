"""The link matrix: probe rounds of disjoint pairs, gaps kept explicit, the Parquet file and its errors."""

import numpy as np
import pandas as pd
import pytest

from harness.errors import BadInput
from harness.links import LinkMatrix, probe_rounds, read_matrix
from harness.links.observed import Crossing, Leg, crossings, refine


@pytest.mark.parametrize("count", range(1, 10))
def test_rounds_cover_every_ordered_pair_once_and_never_share_a_host(count):
    hosts = [f"h{index}" for index in range(count)]
    rounds = probe_rounds(hosts)
    pairs = [pair for round_ in rounds for pair in round_]
    assert sorted(pairs) == sorted((a, b) for a in hosts for b in hosts if a != b)
    for round_ in rounds:
        busy = [host for pair in round_ for host in pair]
        assert len(busy) == len(set(busy))
    assert len(rounds) == (0 if count == 1 else 2 * (count - 1) if count % 2 == 0 else 2 * count)


def test_a_host_listed_twice_is_refused():
    with pytest.raises(ValueError, match="expected each host once"):
        probe_rounds(["a", "b", "a"])


def sample_matrix() -> LinkMatrix:
    matrix = LinkMatrix.empty(["rpi1", "jetson1", "gpu1"])
    matrix.record("rpi1", "jetson1", 1.25e6, 0.004)
    matrix.record("jetson1", "rpi1", 1.0e6, 0.004)
    matrix.record("jetson1", "gpu1", 12.5e6, 0.002)
    matrix.record("gpu1", "jetson1", 12.5e6, 0.002)
    matrix.record("gpu1", "rpi1", 0.6e6, 0.010)
    matrix.mark_gap("rpi1", "gpu1", "no reply from gpu1 within 5 s")
    return matrix


def test_the_matrix_round_trips_through_parquet_with_its_gap(tmp_path):
    path = sample_matrix().write(tmp_path / "links.parquet")
    table = pd.read_parquet(path)
    assert list(table.columns) == ["src", "dst", "rate_bytes_per_s", "rtt_s", "source", "note"]
    assert len(table) == 6
    again = read_matrix(path)
    assert again.hosts == ("rpi1", "jetson1", "gpu1")
    assert again.gaps() == [("rpi1", "gpu1", "no reply from gpu1 within 5 s")]
    rate, delay = again.ordered(["gpu1", "jetson1", "rpi1"])
    assert rate[1, 0] == 12.5e6 and rate[2, 0] == 0.0 and delay[0, 2] == pytest.approx(0.005)
    assert np.all(np.diag(delay) == 0)


TRUE_RATES = {
    ("rpi1", "jetson1"): 2e6,
    ("jetson1", "gpu1"): 8e6,
    ("gpu1", "rpi1"): 10e6,
    ("rpi1", "gpu1"): 4e6,
}
DELAY_S = 0.005


def _crossing(hosts: list[str], sizes: list[int], noise: float = 0.0) -> Crossing:
    """An inference through ``hosts`` and back to the first, its time as the true links give it."""
    legs = tuple(Leg(a, b, size) for a, b, size in zip(hosts, [*hosts[1:], hosts[0]], sizes, strict=True))
    seconds = sum(leg.nbytes / TRUE_RATES[(leg.src, leg.dst)] + DELAY_S for leg in legs)
    return Crossing(legs, seconds * (1 + noise))


def _pipelines_of_a_sweep(repeats: int, noise: float = 0.0) -> list[Crossing]:
    """What a sweep over tiers crosses: rpi1>gpu1 at two cuts and rpi1>jetson1>gpu1 at two pairs of
    cuts, each inference of a pipeline with the same bytes, ``repeats`` times each."""
    generator = np.random.default_rng(3)
    shapes = [
        (["rpi1", "gpu1"], [300_000, 4_000]),
        (["rpi1", "gpu1"], [120_000, 4_000]),
        (["rpi1", "jetson1", "gpu1"], [300_000, 40_000, 4_000]),
        (["rpi1", "jetson1", "gpu1"], [120_000, 160_000, 4_000]),
    ]
    return [
        _crossing(hosts, sizes, noise * generator.standard_normal()) for _ in range(repeats) for hosts, sizes in shapes
    ]


@pytest.mark.parametrize(("noise", "within"), [(0.0, 1e-3), (0.05, 0.05)])
def test_transfers_of_a_sweeps_pipelines_pin_down_each_link_they_cross(noise, within):
    """The prior says 10 MB/s everywhere; the transfers say otherwise on every link they cross
    with tensors. The 4 kB replies are too small to time among them: gpu1 -> rpi1 keeps its prior."""
    prior = LinkMatrix.declared(["rpi1", "jetson1", "gpu1"], 10e6, DELAY_S)
    refined = refine(prior, _pipelines_of_a_sweep(50, noise))
    table = refined.frame().set_index(["src", "dst"])
    for link in [("rpi1", "jetson1"), ("jetson1", "gpu1"), ("rpi1", "gpu1")]:
        assert table.loc[link, "rate_bytes_per_s"] == pytest.approx(TRUE_RATES[link], rel=within), link
        assert table.loc[link, "source"] == "transfer"
    assert table.loc[("rpi1", "gpu1"), "note"] == "100 transfers, median 210000 B, over declared 1e+07 B/s"
    for link in [("gpu1", "rpi1"), ("jetson1", "rpi1"), ("gpu1", "jetson1")]:
        assert (table.loc[link, "rate_bytes_per_s"], table.loc[link, "source"]) == (10e6, "declared")
    assert refined.rtt_s[0, 1] == pytest.approx(2 * DELAY_S)
    assert prior.source[("rpi1", "gpu1")] == "declared", "the prior is left as it was"


def test_links_always_crossed_together_keep_the_time_measured_each_off_its_prior_by_one_factor():
    """One pipeline, the same bytes every time: no transfer tells its three links apart."""
    prior = LinkMatrix.declared(["rpi1", "jetson1", "gpu1"], 1e6, DELAY_S)
    prior.record("jetson1", "gpu1", 4e6, 2 * DELAY_S, "probe")
    prior.record("gpu1", "rpi1", 10e6, 2 * DELAY_S, "probe")
    inferences = [_crossing(["rpi1", "jetson1", "gpu1"], [200_000, 200_000, 4_000]) for _ in range(50)]
    refined = refine(prior, inferences)
    predicted = sum(
        leg.nbytes / refined.rate[refined.index(leg.src), refined.index(leg.dst)] + DELAY_S
        for leg in inferences[0].legs
    )
    assert predicted == pytest.approx(inferences[0].seconds, rel=0.01)
    factors = [refined.rate[i, j] / prior.rate[i, j] for i, j in [(0, 1), (1, 2)]]
    assert factors == pytest.approx([factors[0]] * 2, rel=1e-3) and factors[0] > 1.5


def test_crossings_follow_each_inference_through_its_hops_and_back():
    records = pd.DataFrame(
        {
            "run": ["r", "r"],
            "pipeline": ["rpi1>3>jetson1>13>gpu1", "rpi1"],
            "repeat": [0, 0],
            "transfer_ns": [90_000_000, 0],
            "reply_bytes_wire": [4_100, 0],
        }
    )
    hops = pd.DataFrame(
        {
            "run": ["r", "r"],
            "pipeline": ["rpi1>3>jetson1>13>gpu1"] * 2,
            "repeat": [0, 0],
            "hop": [2, 1],
            "host": ["gpu1", "jetson1"],
            "bytes_wire": [36_900, 186_700],
        }
    )
    assert crossings(records, hops) == [
        Crossing((Leg("rpi1", "jetson1", 186_700), Leg("jetson1", "gpu1", 36_900), Leg("gpu1", "rpi1", 4_100)), 0.09)
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda table: table.drop(columns="rtt_s"), "no column rtt_s; expected columns src, dst, rate_bytes_per_s"),
        (lambda table: table.assign(source="guess"), "column source has guess; expected one of probe"),
        (lambda table: table.assign(rate_bytes_per_s=-1.0), r"rate -1.0 B/s, rtt .*; expected a positive rate"),
        (lambda table: pd.concat([table, table.iloc[:1]]), "expected each ordered pair of distinct hosts at most once"),
    ],
)
def test_a_bad_file_names_the_file_and_column(tmp_path, change, message):
    path = tmp_path / "links.parquet"
    change(sample_matrix().frame()).to_parquet(path, index=False)
    with pytest.raises(BadInput, match=message) as raised:
        read_matrix(path)
    assert str(path) in str(raised.value)


def test_an_unreadable_file_says_what_was_expected(tmp_path):
    path = tmp_path / "links.parquet"
    path.write_text("src,dst\n")
    with pytest.raises(BadInput, match=r"cannot read a link matrix .*expected Parquet from 'harness links measure'"):
        read_matrix(path)


def test_a_fixed_cost_in_every_inference_is_not_taken_for_a_slow_reply_link():
    """A loaded machine adds about the same milliseconds to every inference; the 4 kB reply, in
    every inference with the same bytes, would take all of them (a rate ten times too slow) were it
    judged on the fit rather than on how much of each inference it takes as planned."""
    prior = LinkMatrix.declared(["rpi1", "jetson1", "gpu1"], 10e6, DELAY_S)
    inferences = [Crossing(crossing.legs, crossing.seconds + 0.008) for crossing in _pipelines_of_a_sweep(50)]
    table = refine(prior, inferences).frame().set_index(["src", "dst"])
    assert (table.loc[("gpu1", "rpi1"), "rate_bytes_per_s"], table.loc[("gpu1", "rpi1"), "source"]) == (
        10e6,
        "declared",
    )
    assert (table.loc[[("rpi1", "gpu1"), ("rpi1", "jetson1")], "source"] == "transfer").all()
