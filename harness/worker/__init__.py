"""The two ends of a split inference: the cloud worker daemon and the edge driver."""

from harness.worker.client import WorkerClient, WorkerError
from harness.worker.daemon import Worker, WorkerConfig
from harness.worker.edge import EdgeDriver, LinkSettings, RetryPolicy, sweep, synthetic_inputs
from harness.worker.segments import ModelPolicy

__all__ = [
    "EdgeDriver",
    "LinkSettings",
    "ModelPolicy",
    "RetryPolicy",
    "Worker",
    "WorkerClient",
    "WorkerConfig",
    "WorkerError",
    "sweep",
    "synthetic_inputs",
]
