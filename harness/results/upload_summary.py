"""What a sweep with incremental uploads shows: per run (one plan), over its repeats, how many
partitions went up, the largest one's share, when the upload ended, and the queries that finished
before it (mean and spread) beside the plan's prediction and its shared-link replay (the chart is
``charts.upload_queries``).
"""

from dataclasses import fields

import pandas as pd

from harness.results.folder import ResultsFolder
from harness.results.uploads import PartitionRecord, QueryRecord

SUMMARY_COLUMNS = [
    "run",
    "plan",
    "repeats",
    "partitions",
    "largest_share",
    "upload_s",
    "queries_before_end",
    "queries_before_end_std",
    "predicted_queries",
    "simulated_queries",
    "client_scale",
    "upload_share",
    "measured_vs_predicted",
    "measured_vs_simulated",
    "first_query_ms",
    "median_query_ms",
    "agree",
    "decision_ms",
]


def read_uploads(folder: ResultsFolder) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The partitions and queries of a folder's uploads (a plan that uploads nothing has queries
    only); None without any."""
    if not (folder.uploads.is_file() or folder.queries.is_file()):
        return None
    tables = []
    for path, kind in ((folder.uploads, PartitionRecord), (folder.queries, QueryRecord)):
        columns = [item.name for item in fields(kind)]
        tables.append(pd.read_parquet(path) if path.is_file() else pd.DataFrame(columns=columns))
    return tables[0], tables[1]


def upload_summary(partitions: pd.DataFrame, queries: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for run in dict.fromkeys([*partitions["run"], *queries["run"]]):
        parts = partitions[partitions["run"] == run]
        asked = queries[queries["run"] == run]
        per_repeat = asked.groupby("repeat")["before_end"].sum()
        took_ms = (asked["end_ns"] - asked["start_ns"]) / 1e6
        first = took_ms[asked["query"] == 1]
        measured = float(per_repeat.mean()) if len(per_repeat) else 0.0
        uploaded = not parts.empty
        predicted = int(parts["predicted_queries"].iloc[0]) if uploaded else 0
        simulated = int(parts["simulated_queries"].iloc[0]) if uploaded else 0
        shares = (
            parts.groupby("repeat")["param_bytes"].agg(lambda sizes: sizes.max() / sizes.sum()) if uploaded else None
        )
        rows.append(
            {
                "run": run,
                "plan": (parts if uploaded else asked)["plan"].iloc[0],
                "repeats": int((parts if uploaded else asked)["repeat"].nunique()),
                "partitions": int(parts.groupby("repeat")["partition"].max().iloc[0]) if uploaded else 0,
                "largest_share": float(shares.mean()) if uploaded else None,
                "upload_s": float((parts.groupby("repeat")["acked_ns"].max() / 1e9).mean()) if uploaded else 0.0,
                "queries_before_end": measured,
                "queries_before_end_std": float(per_repeat.std(ddof=0)) if len(per_repeat) else 0.0,
                "predicted_queries": predicted,
                "simulated_queries": simulated,
                "client_scale": float(parts["client_scale"].iloc[0]) if uploaded else None,
                "upload_share": float(parts["upload_share"].iloc[0]) if uploaded else None,
                "measured_vs_predicted": measured / predicted if predicted else None,
                "measured_vs_simulated": measured / simulated if simulated else None,
                "first_query_ms": float(first.mean()) if len(first) else None,
                "median_query_ms": float(took_ms.median()) if len(took_ms) else None,
                "agree": float(asked["agrees"].mean()) if len(asked) else None,
                "decision_ms": float(parts["decision_ns"].iloc[0] / 1e6) if uploaded else None,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
