"""``harness bench wire``: every method measured at every size against the raw-bytes floor; bad options exit 2."""

import pytest
from click.testing import CliRunner

from harness.bench import wire
from harness.cli import cli

SIZES = [4096, 64 * 1024]


@pytest.fixture(scope="module")
def rows():
    return wire.bench_wire(SIZES, repeats=3, warmup=1)


def test_every_method_is_measured_at_every_size(rows):
    assert [(row.method, row.size) for row in rows] == [(method, size) for size in SIZES for method in wire.METHODS]
    assert all(row.median_us > 0 and row.p95_us > 0 and row.wire_bytes > 0 for row in rows)


def test_ratios_are_to_raw_bytes_at_the_same_size(rows):
    raw = {row.size: row for row in rows if row.method == wire.RAW}
    for row in rows:
        assert row.ratio_to_raw == pytest.approx(row.median_us / raw[row.size].median_us)
    assert all(row.ratio_to_raw == 1.0 for row in raw.values())


def test_wire_bytes_count_what_one_direction_carries(rows):
    by_cell = {(row.method, row.size): row.wire_bytes for row in rows}
    for size in SIZES:
        assert by_cell[wire.RAW, size] == size
        assert size < by_cell["harness none", size] < size + 1024
        assert by_cell["harness zstd", size] < size


def test_sizes_are_read_in_binary_units():
    assert wire.parse_sizes("1m, 4K,4k,12") == [12, 4096, 1024 * 1024]
    assert [wire.size_label(size) for size in (12, 4096, 1024 * 1024)] == ["12", "4k", "1m"]


def test_missing_the_target_prints_the_table_then_exits_1(monkeypatch):
    def slow_codec(sizes, repeats, warmup):
        return [wire.WireRow(wire.RAW, size, 100.0, 120.0, size, 1.0) for size in sizes] + [
            wire.WireRow("harness none", size, 150.0, 180.0, size + 300, 1.5) for size in sizes
        ]

    monkeypatch.setattr(wire, "bench_wire", slow_codec)
    result = CliRunner().invoke(cli, ["bench", "wire", "--sizes", "4k,1m"])
    assert result.exit_code == 1, result.output
    assert "OVER" in result.stdout
    assert result.stderr == "harness: error: harness none at 1m costs 1.50x the raw-bytes round trip (target 1.3x)\n"
