"""The worker's model segments: built on first request, kept per model and cut range, bounded in number.

A segment runs from one cut to the next of a pipeline; a tail (to the model's output) is the
two-host case. A request names a model; the worker builds it itself, so what a client may name is
policed here: registry names always, ``module:function`` only from the packages the operator
deployed (``experiments`` by default, since importing a module runs its code), weight files only
from the weights directory the operator gave. Nothing a client sends is ever executed as code: an
exit's template is a built-in, a ``module:function`` of those packages, or a template file the
operator shipped into the weights directory, named by the request, never carried in it.
"""

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import msgspec
import torch

from harness.errors import BadInput
from harness.exits.assemble import build_heads, build_part
from harness.exits.progressive import ProgressivePart
from harness.exits.templates import built_in_templates
from harness.exits.weights import load_exit_weights
from harness.model import Crossing, Granularity, Segment, SplitGraph, build_split_graph, load_model
from harness.model.sources.weights import is_none, is_weight_file
from harness.wire.codecs import UserPair, user_pair
from harness.wire.frames import ExitsSpec, FrameError, Limits, ModelSpec


@dataclass(frozen=True)
class ModelPolicy:
    """What models and weights clients may ask this worker to load."""

    user_packages: tuple[str, ...] = ("experiments",)
    weights_dir: Path | None = None

    def check(self, spec: ModelSpec, request_id: int) -> None:
        self._check_function(f"model '{spec.name}'", "models", spec.name, request_id)
        if not is_none(spec.weights) and is_weight_file(spec.weights):
            self._check_file("weights file", spec.weights, request_id)

    def check_exits(self, exits: ExitsSpec, request_id: int) -> None:
        if ":" in exits.template:
            self._check_function(f"exit template '{exits.template}'", "exit factories", exits.template, request_id)
        elif exits.template not in built_in_templates():
            self._check_file("exit template", exits.template, request_id)
        self._check_file("exit weights", exits.weights, request_id)

    def codec(self, name: str, request_id: int) -> UserPair:
        """A user cut codec's ``(encode, decode)``, from the packages this worker serves only."""
        self._check_function(f"codec '{name}'", "codecs", name, request_id)
        try:
            return user_pair(name)
        except BadInput as error:
            raise FrameError("refused", str(error), request_id) from None

    def _check_function(self, what: str, kind: str, name: str, request_id: int) -> None:
        module, colon, _ = name.partition(":")
        if colon and not any(module == package or module.startswith(package + ".") for package in self.user_packages):
            allowed = ", ".join(self.user_packages) or "none"
            raise FrameError("refused", f"{what}: user {kind} are served from {allowed} only", request_id)

    def _check_file(self, what: str, name: str, request_id: int) -> None:
        path = Path(name).resolve()
        if self.weights_dir is None or not path.is_relative_to(self.weights_dir.resolve()):
            raise FrameError("refused", f"{what} '{name}' is outside this worker's --weights-dir", request_id)


@dataclass
class PreparedSegment:
    """A segment on the worker's device, with what its first cut must receive and the names its
    last cut sends on (empty for a tail, whose output is the model's)."""

    segment: Segment
    live: tuple[Crossing, ...]
    sends: tuple[str, ...]
    weights: str
    load_ns: int


@dataclass
class PreparedExitPart:
    """The last part of a model with its exits, on the worker's device."""

    part: ProgressivePart
    live: tuple[Crossing, ...]
    """What a request carries: the cut's values, then the input of each carried exit."""
    load_ns: int
    carried: tuple[torch.nn.Module, ...] = ()
    """The exits attached before the cut, tried here first (``ExitsSpec.carried``)."""


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
        self._exit_parts: dict[tuple[ModelSpec, int, ExitsSpec], PreparedExitPart] = {}

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

    def exit_part(self, spec: ModelSpec, cut: int, exits: ExitsSpec, request_id: int) -> PreparedExitPart:
        """The part from ``cut`` to the output with ``exits`` (its threshold aside), built once."""
        key = (spec, cut, msgspec.structs.replace(exits, threshold=0.0))
        if key not in self._exit_parts:
            start = time.monotonic_ns()
            self.policy.check_exits(exits, request_id)
            split = self.graph(spec, request_id)
            early = exits.first - len(exits.carried)
            if early < 1 or any(not 0 < attach < cut for attach in exits.carried):
                raise FrameError(
                    "bad-frame",
                    f"carried exits {list(exits.carried)} before exit {exits.first}: expected them numbered from 1, "
                    f"each attached before cut {cut}",
                    request_id,
                )
            try:
                part, _ = build_part(split, cut, None, exits.cuts, exits.template, exits.classes, exits.confidence)
                load_exit_weights(Path(exits.weights), part.exits, exits.first)
                carried = [head.module for head in build_heads(split, exits.carried, exits.template, exits.classes)]
                load_exit_weights(Path(exits.weights), carried, early)
            except BadInput as error:
                raise FrameError("mismatch", str(error), request_id) from None
            live = (*split.live(cut), *(crossing for attach in exits.carried for crossing in split.live(attach)))
            self._exit_parts[key] = PreparedExitPart(
                part.to(self.device),
                live,
                time.monotonic_ns() - start,
                tuple(head.to(self.device).eval() for head in carried),
            )
        self._graphs.move_to_end(spec)
        return self._exit_parts[key]

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
                loaded = load_model(spec.name, spec.weights, spec.classes)
                graph = build_split_graph(loaded, Granularity.parse(spec.granularity), spec.input_shape)
                graph.weights_digest  # noqa: B018 - computed while loading, not during an inference
            except BadInput as error:
                raise FrameError("unknown-model", str(error), request_id) from None
            self._graphs[spec] = graph
            while len(self._graphs) > self.max_models:
                dropped, _ = self._graphs.popitem(last=False)
                self._segments = {key: value for key, value in self._segments.items() if key[0] != dropped}
                self._exit_parts = {key: value for key, value in self._exit_parts.items() if key[0] != dropped}
        return self._graphs[spec]
