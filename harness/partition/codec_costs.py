"""What a cut codec costs in time at each cut, for the partitioners that charge it.

Where a sweep recorded the codec, its cost at a cut is the median of the edge's encode plus the
worker's decode over that cut's inferences. Before a sweep it is estimated here, by encoding and
decoding tensors of each cut's shapes on this machine: the same stand-in for both hosts that
profiling both roles here is for the layers.
"""

import statistics
import time

import pandas as pd
import torch

from harness.model import SplitGraph
from harness.wire.codecs import FLOATING, CutCodec, decode


def measured_codec_ns(records: pd.DataFrame, run: str) -> dict[int, float]:
    """Per cut of ``run``, the median of its inferences' codec time on both hosts (empty for
    records written before codecs, or without one)."""
    if "codec_encode_ns" not in records.columns:
        return {}
    rows = records[(records["run"] == run) & (records["bytes_wire"] > 0)]
    both = rows["codec_encode_ns"] + rows["cloud_codec_ns"]
    return {int(cut): float(group.median()) for cut, group in both.groupby(rows["cut"])}


def estimated_codec_ns(split: SplitGraph, codec: CutCodec, cuts: list[int], repeats: int = 5) -> dict[int, float]:
    """Per cut, the median time this machine takes to encode and decode random tensors of the
    cut's live shapes (nothing without a codec)."""
    if not codec.enabled:
        return {}
    generator = torch.Generator().manual_seed(0)
    estimates = {}
    for cut in cuts:
        tensors = [
            (torch.randn(leaf.shape, generator=generator).to(getattr(torch, leaf.dtype)), leaf.dtype)
            for leaf in split.cut(cut).live
            if leaf.kind == "tensor" and leaf.dtype in FLOATING
        ]
        times = []
        for _ in range(repeats):
            started = time.perf_counter_ns()
            for tensor, dtype in tensors:
                coded = codec.encode(tensor, dtype)
                if coded is not tensor:
                    decode(coded)
            times.append(time.perf_counter_ns() - started)
        estimates[cut] = float(statistics.median(times))
    return estimates
