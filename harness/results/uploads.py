"""The records of an incremental upload (IONN, seed 004): one row per partition uploaded and one per
query run during (and just after) the upload, each upload a repeat of its run.

Times are integer nanoseconds on the edge's monotonic clock from the upload's start (the first
chunk handed to the link), so partitions and queries of one upload line up; a worker's own
durations (building a partition, computing a query's segments) come from its clock. The plan's
prediction sits beside what was measured: each partition's predicted arrival and query latency, and
the queries the prediction (``predicted_queries``) and the shared-link replay (``simulated_queries``)
expect to finish before the upload ends, repeated on each row of the upload.
"""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PartitionRecord:
    run: str
    repeat: int
    plan: str
    partition: int
    """1-based, in upload order."""
    units: str
    """The units it carries, by name, comma-separated."""
    params: int
    param_bytes: int
    chunks: int
    sent_ns: int
    """When its first chunk was handed to the link."""
    last_sent_ns: int
    """When its commit was handed to the link, after its last chunk."""
    acked_ns: int
    """When the worker's acknowledgement arrived: queries use it from then on."""
    build_ns: int
    """The worker's time to take the partition in (its commit)."""
    predicted_done_ns: int
    predicted_latency_ns: int
    """A query's latency with this partition and the ones before it on the server, as planned."""
    predicted_queries: int
    simulated_queries: int
    client_scale: float
    """The client's compute beside an upload over its profiled time, measured before the upload;
    the replay (``simulated_queries``) slows the client's layers by it while the upload runs."""
    upload_share: float
    """The share of the link's rate the upload reached meanwhile, which the replay gives it while the
    client computes."""
    decision_ns: int
    """The planner's time to make the plan."""


@dataclass(frozen=True)
class QueryRecord:
    run: str
    repeat: int
    plan: str
    query: int
    """1-based, in the order they ran."""
    input: int
    start_ns: int
    end_ns: int
    stage: int
    """The partitions acknowledged when it started (0: none), all of which it could use."""
    round_trips: int
    bytes_up: int
    bytes_down: int
    edge_ns: int
    """The edge's compute of its client ranges."""
    cloud_ns: int
    """The worker's compute of its server ranges."""
    transfer_ns: int
    """The rest of its time: encoding, the link both ways, waiting behind the upload."""
    predicted_ns: int
    """Its stage's latency as planned."""
    before_end: bool
    """It finished before the last partition was acknowledged."""
    agrees: bool
    """Its output equals the whole model's, run on the edge alone (``harness/worker/agreement.py``:
    within a tolerance where the worker computes on a GPU)."""


def as_rows(records) -> list[dict]:
    return [asdict(record) for record in records]
