"""The split engine: load a model by name, trace it, cut it exactly into edge and cloud segments."""

from harness.model.graph import Crossing, Cut, SplitGraph, build_split_graph
from harness.model.layers import Granularity, Layer
from harness.model.segments import Head, Segment, Tail
from harness.model.sources import LoadedModel, load_model, model_names

__all__ = [
    "Crossing",
    "Cut",
    "Granularity",
    "Head",
    "Layer",
    "LoadedModel",
    "Segment",
    "SplitGraph",
    "Tail",
    "build_split_graph",
    "load_model",
    "model_names",
]
