"""The worker's model segments: built on first request, kept per model and cut range, bounded in number.

A segment runs from one cut to the next of a pipeline; a tail (to the model's output) is the
two-host case. A request names a model; the worker builds it itself, so what a client may name is
policed here: registry names always, ``module:function`` only from the packages the operator
deployed (``experiments`` by default, since importing a module runs its code), weight files only
from the weights directory the operator gave. Nothing a client sends is ever executed as code.
"""

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.errors import BadInput
from harness.model import Crossing, Granularity, Segment, SplitGraph, build_split_graph, load_model
from harness.model.sources.weights import is_none, is_weight_file
from harness.wire.frames import FrameError, Limits, ModelSpec


@dataclass(frozen=True)
class ModelPolicy:
    """What models and weights clients may ask this worker to load."""

    user_packages: tuple[str, ...] = ("experiments",)
    weights_dir: Path | None = None

    def check(self, spec: ModelSpec, request_id: int) -> None:
        module, colon, _ = spec.name.partition(":")
        if colon and not any(module == package or module.startswith(package + ".") for package in self.user_packages):
            allowed = ", ".join(self.user_packages) or "none"
            raise FrameError("refused", f"model '{spec.name}': user models are served from {allowed} only", request_id)
        if not is_none(spec.weights) and is_weight_file(spec.weights):
            path = Path(spec.weights).resolve()
            if self.weights_dir is None or not path.is_relative_to(self.weights_dir.resolve()):
                raise FrameError(
                    "refused", f"weights file '{spec.weights}' is outside this worker's --weights-dir", request_id
                )


@dataclass
class PreparedSegment:
    """A segment on the worker's device, with what its first cut must receive and the names its
    last cut sends on (empty for a tail, whose output is the model's)."""

    segment: Segment
    live: tuple[Crossing, ...]
    sends: tuple[str, ...]
    weights: str
    load_ns: int


class SegmentCache:
    """Split graphs per model (at most ``max_models``, least recently used dropped) and segments per
    cut range."""

    def __init__(self, device: torch.device, policy: ModelPolicy, limits: Limits, max_models: int = 4):
        self.device = device
        self.policy = policy
        self.limits = limits
        self.max_models = max_models
        self._graphs: OrderedDict[ModelSpec, SplitGraph] = OrderedDict()
        self._segments: dict[tuple[ModelSpec, int, int | None], PreparedSegment] = {}

    def get(self, spec: ModelSpec, cut: int, end: int | None, request_id: int) -> PreparedSegment:
        """The segment from ``cut`` to ``end`` (None: to the output)."""
        key = (spec, cut, end)
        if key not in self._segments:
            start = time.monotonic_ns()
            split = self.graph(spec, request_id)
            try:
                segment = split.segment(cut, end).to(self.device)
                sends = () if end is None else tuple(crossing.name for crossing in split.live(end))
                live = split.live(cut)
            except BadInput as error:
                raise FrameError("mismatch", str(error), request_id) from None
            self._segments[key] = PreparedSegment(
                segment, live, sends, split.weights_digest, time.monotonic_ns() - start
            )
        self._graphs.move_to_end(spec)
        return self._segments[key]

    def loaded(self) -> list[str]:
        return [
            f"{spec.name}@{spec.granularity} cut {cut}" + ("" if end is None else f" to {end}")
            for spec, cut, end in self._segments
        ]

    def graph(self, spec: ModelSpec, request_id: int) -> SplitGraph:
        """The split graph of ``spec``, built on first use (the policy is checked then)."""
        if spec not in self._graphs:
            self.policy.check(spec, request_id)
            elements = 1
            for size in spec.input_shape:
                elements *= size
            if 4 * elements > self.limits.message_bytes:
                raise FrameError(
                    "too-large", f"input shape {list(spec.input_shape)} exceeds this worker's limits", request_id
                )
            try:
                loaded = load_model(spec.name, spec.weights)
                graph = build_split_graph(loaded, Granularity.parse(spec.granularity), spec.input_shape)
                graph.weights_digest  # noqa: B018 - computed while loading, not during an inference
            except BadInput as error:
                raise FrameError("unknown-model", str(error), request_id) from None
            self._graphs[spec] = graph
            while len(self._graphs) > self.max_models:
                dropped, _ = self._graphs.popitem(last=False)
                self._segments = {key: value for key, value in self._segments.items() if key[0] != dropped}
        return self._graphs[spec]
