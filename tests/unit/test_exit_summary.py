"""Per threshold: where samples left, the bytes, the latency, and the serverless cost of the ones
that reached the cloud against the cloud-only baseline, on the seed's default price model."""

import math

import pandas as pd
import pytest

from harness.exits.cost import load_prices
from harness.exits.summary import progressive_summary

MS = 1_000_000


def _records() -> pd.DataFrame:
    """Run r06: two samples answered on the edge, one by the cloud's exit after 50 ms of work, one by
    the final classifier after 260 ms; run r10 (c_thr 1.0): both samples to the final classifier."""
    rows = [
        ("r06", 0.6, 1, "edge", 0, 0, 0, 0, 0, 10, 1, 1),
        ("r06", 0.6, 1, "edge", 0, 0, 0, 0, 0, 12, 2, 2),
        ("r06", 0.6, 2, "cloud", 1000, 5, 40, 5, 100, 80, 3, 0),
        ("r06", 0.6, 0, "", 1000, 10, 240, 10, 4000, 300, 4, 4),
        ("r10", 1.0, 0, "", 1000, 10, 240, 10, 4000, 290, 5, 5),
        ("r10", 1.0, 0, "", 1000, 10, 240, 10, 4000, 310, 6, 6),
    ]
    columns = ["run", "threshold", "exit", "exit_host", "bytes_wire", "cloud_decode_ns", "cloud_ns"]
    columns += ["cloud_encode_ns", "reply_bytes_wire", "e2e_ns", "predicted", "label"]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ["cloud_decode_ns", "cloud_ns", "cloud_encode_ns", "e2e_ns"]:
        frame[column] *= MS
    return frame


def test_each_threshold_is_summarised_with_its_cost_against_cloud_only():
    summary = progressive_summary(_records(), load_prices(), 128, cloud_only_s=0.26).set_index("run")
    first = summary.loc["r06"]
    assert first["samples"] == 4 and first["threshold"] == 0.6
    assert first["edge_share"] == 0.5 and first["exit_shares"] == "exit 1: 50%, exit 2: 25%, final: 25%"
    assert first["bytes_per_sample"] == 500.0
    assert first["median_ms"] == 46.0 and first["p95_ms"] == pytest.approx(267.0)
    # 50 ms is billed as 100 ms, 260 ms as 300 ms: $2.3125e-7 per 100 ms at 128 MB, $4e-7 an
    # invocation, $0.12 per GB leaving; the edge's two samples cost nothing.
    cloud_exit = 2.3125e-7 + 4e-7 + 100 / 1e9 * 0.12
    final = 3 * 2.3125e-7 + 4e-7 + 4000 / 1e9 * 0.12
    assert first["cost_per_1000"] == pytest.approx(1000 * (cloud_exit + final) / 4)
    assert first["cost_vs_cloud_only"] == pytest.approx((cloud_exit + final) / 4 / final)
    assert first["accuracy"] == 0.75
    control = summary.loc["r10"]
    assert control["edge_share"] == 0.0 and control["exit_shares"] == "final: 100%"
    assert control["cost_vs_cloud_only"] == pytest.approx(1.0) and control["accuracy"] == 1.0


def test_without_a_baseline_or_labels_those_columns_are_empty():
    records = _records().drop(columns=["predicted", "label"])
    summary = progressive_summary(records, load_prices(), 128)
    assert summary["cost_vs_cloud_only"].isna().all() and summary["accuracy"].isna().all()
    assert not math.isnan(summary["cost_per_1000"].iloc[0])
