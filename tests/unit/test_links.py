"""The link matrix: probe rounds of disjoint pairs, gaps kept explicit, the Parquet file and its errors."""

import math

import numpy as np
import pandas as pd
import pytest

from harness.errors import BadInput
from harness.links import LinkMatrix, probe_rounds, read_matrix


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


def test_real_transfers_refine_a_rate_and_fill_a_gap():
    matrix = sample_matrix()
    matrix.observe("rpi1", "jetson1", 1_000_000, 2.0)
    assert matrix.rate[0, 1] == pytest.approx(0.8 * 1.25e6 + 0.2 * 0.5e6)
    matrix.observe("rpi1", "gpu1", 300_000, 1.0)
    assert matrix.rate[0, 2] == 300_000 and matrix.gaps() == []
    assert matrix.frame().set_index(["src", "dst"]).loc[("rpi1", "gpu1"), "source"] == "transfer"
    assert math.isnan(matrix.rtt_s[0, 2])


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
