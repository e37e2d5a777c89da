"""What a run produces: one record per inference, and the files and summaries built from them."""

from harness.results.records import InferenceRecord

__all__ = ["InferenceRecord"]
