"""What progressive inference gave, per run (one confidence threshold each): where the samples left,
what crossed the link, how long they took, and what the serverless cloud charged for the ones that
reached it, beside the cloud-only baseline that pays the whole network for every sample.

Each offloaded sample is billed as one invocation for the worker's busy time (decoding, computing,
encoding), rounded up by the price model, plus its reply's egress; a sample an edge exit answered
costs nothing in the cloud.
"""

import numpy as np
import pandas as pd

from harness.exits.cost import PriceModel

COLUMNS = [
    "run",
    "threshold",
    "samples",
    "edge_share",
    "exit_shares",
    "bytes_per_sample",
    "median_ms",
    "p95_ms",
    "cost_per_1000",
    "cost_vs_cloud_only",
    "accuracy",
]


def progressive_summary(
    records: pd.DataFrame, prices: PriceModel, memory_mb: int, cloud_only_s: float | None = None
) -> pd.DataFrame:
    """One row per run of ``records`` (with ``exit``, ``exit_host`` and ``threshold``). ``cloud_only_s``:
    the whole network's time on the cloud, for the baseline's cost per sample (its reply taken as
    the runs' median final-classifier reply); without it the relative cost is NaN. ``accuracy``
    needs ``predicted`` and ``label`` columns, else NaN."""
    rows = []
    for run, group in records.groupby("run", sort=False):
        offloaded = group[group["exit_host"] != "edge"]
        busy_s = (offloaded["cloud_decode_ns"] + offloaded["cloud_ns"] + offloaded["cloud_encode_ns"]) / 1e9
        costs = [
            prices.sample_cost(memory_mb, seconds, int(reply))
            for seconds, reply in zip(busy_s, offloaded["reply_bytes_wire"], strict=True)
        ]
        per_1000 = 1000 * sum(costs) / len(group)
        baseline = np.nan
        if cloud_only_s is not None:
            replies = group.loc[group["exit"] == 0, "reply_bytes_wire"]
            reply = int(replies.median()) if len(replies) else 0
            baseline = 1000 * prices.sample_cost(memory_mb, cloud_only_s, reply)
        left = group["exit"].value_counts(normalize=True).sort_index()
        rows.append(
            {
                "run": run,
                "threshold": float(group["threshold"].iloc[0]),
                "samples": len(group),
                "edge_share": float((group["exit_host"] == "edge").mean()),
                "exit_shares": ", ".join(
                    f"{'final' if number == 0 else f'exit {number}'}: {share:.0%}"
                    for number, share in [*left.drop(0, errors="ignore").items(), (0, left.get(0, 0.0))]
                ),
                "bytes_per_sample": float(group["bytes_wire"].mean()),
                "median_ms": float(group["e2e_ns"].median() / 1e6),
                "p95_ms": float(group["e2e_ns"].quantile(0.95) / 1e6),
                "cost_per_1000": per_1000,
                "cost_vs_cloud_only": per_1000 / baseline if baseline else np.nan,
                "accuracy": _accuracy(group),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _accuracy(group: pd.DataFrame) -> float:
    if not {"predicted", "label"} <= set(group.columns):
        return np.nan
    return float((group["predicted"] == group["label"]).mean())
