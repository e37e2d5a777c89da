"""What a run produces: one record per inference, and the files and summaries built from them."""

from harness.results.folder import ResultsFolder
from harness.results.records import FailedInference, InferenceRecord
from harness.results.report import build_report
from harness.results.summary import best_cuts, summarise
from harness.results.writer import RecordWriter, write_layers

__all__ = [
    "FailedInference",
    "InferenceRecord",
    "RecordWriter",
    "ResultsFolder",
    "best_cuts",
    "build_report",
    "summarise",
    "write_layers",
]
