"""Upload sessions: a model's architecture on the worker, its weights arriving in chunks, and the
segments it can serve with what has arrived (IONN's incremental offloading).

The worker builds the architecture itself from the model's name, as for any request (so nothing
executable crosses the wire), then empties every parameter and buffer: a weight that was never
uploaded is never used, even where an untrained model would be initialised alike on both hosts.
Each chunk is checked against the worker's own architecture (the parameter exists, the sender holds
it with the same dtype and shape, the bytes fit inside it and overlap nothing already received)
and copied straight into the parameter's storage, so a session holds the model once. A partition
is served from its commit on, once every byte of its parameters is in; a segment asked for before
gets an error naming the first parameter it lacks.
"""

import time
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from harness.errors import BadInput
from harness.model import Granularity, SplitGraph, build_split_graph, load_model
from harness.model.analysis import attribute
from harness.model.sources import weights_digest
from harness.wire.frames import Chunk, Commit, FrameError, ModelSpec
from harness.worker.segments import ModelPolicy, PreparedSegment


@dataclass
class _Parameter:
    tensor: torch.Tensor
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    received: list[tuple[int, int]] = field(default_factory=list)
    """Byte ranges in, sorted and disjoint."""

    @property
    def received_bytes(self) -> int:
        return sum(end - start for start, end in self.received)


class UploadSession:
    """One client's upload of one model."""

    def __init__(self, spec: ModelSpec, device: torch.device, request_id: int):
        started = time.monotonic_ns()
        try:
            loaded = load_model(spec.name, "none", spec.classes)
            self.split: SplitGraph = build_split_graph(loaded, Granularity.parse(spec.granularity), spec.input_shape)
        except BadInput as error:
            raise FrameError("unknown-model", str(error), request_id) from None
        self.spec = spec
        self.device = device
        module = self.split.graph_module
        module.to(device)
        self.params: dict[str, _Parameter] = {}
        with torch.no_grad():
            for name in self.split.tensor_names:
                tensor = attribute(module, name)
                tensor.zero_()
                dtype = str(tensor.dtype).removeprefix("torch.")
                nbytes = tensor.numel() * tensor.element_size()
                self.params[name] = _Parameter(tensor, dtype, tuple(tensor.shape), nbytes)
        self.committed: set[str] = set()
        self.stages = 0
        self._segments: dict[tuple[int, int | None], PreparedSegment] = {}
        self._needs: dict[tuple[int, int | None], list[str]] = {}
        self.load_ns = time.monotonic_ns() - started

    @property
    def param_bytes(self) -> int:
        return sum(param.nbytes for param in self.params.values())

    def store(self, chunk: Chunk, data, request_id: int) -> _Parameter:
        """Copy one chunk's bytes into its parameter, after checking them against the architecture."""
        param = self.params.get(chunk.param)
        if param is None:
            raise FrameError(
                "mismatch", f"header field param: '{chunk.param}' is not a parameter of {self.spec.name}", request_id
            )
        if chunk.dtype != param.dtype:
            raise FrameError(
                "mismatch", f"header field dtype: '{chunk.param}' is {param.dtype} here, not {chunk.dtype}", request_id
            )
        if tuple(chunk.shape) != param.shape:
            raise FrameError(
                "mismatch",
                f"header field shape: '{chunk.param}' is {list(param.shape)} here, not {list(chunk.shape)}",
                request_id,
            )
        start, end = chunk.offset, chunk.offset + len(data)
        if end > param.nbytes:
            raise FrameError(
                "too-large",
                f"header field offset: bytes {start} to {end} of '{chunk.param}' exceed its {param.nbytes}",
                request_id,
            )
        if any(start < high and low < end for low, high in param.received) or chunk.param in self.committed:
            raise FrameError(
                "mismatch",
                f"header field offset: bytes {start} to {end} of '{chunk.param}' were already received",
                request_id,
            )
        if end > start:
            target = param.tensor.detach().reshape(-1).view(torch.uint8)
            source = torch.frombuffer(memoryview(data), dtype=torch.uint8)
            with torch.no_grad():
                target[start:end].copy_(source)
            param.received = _merged([*param.received, (start, end)])
        return param

    def commit(self, commit: Commit, request_id: int) -> int:
        """Serve ``commit.params`` from now; returns the time it took (the partition's build)."""
        started = time.monotonic_ns()
        for name in commit.params:
            param = self.params.get(name)
            if param is None:
                raise FrameError(
                    "mismatch", f"header field params: '{name}' is not a parameter of {self.spec.name}", request_id
                )
            if param.received_bytes != param.nbytes:
                raise FrameError(
                    "mismatch",
                    f"header field params: '{name}' has {param.received_bytes} of its {param.nbytes} bytes",
                    request_id,
                )
        if commit.stage != self.stages + 1:
            raise FrameError(
                "mismatch", f"header field stage: expected {self.stages + 1}, got {commit.stage}", request_id
            )
        self.committed.update(commit.params)
        self.stages = commit.stage
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.monotonic_ns() - started

    @property
    def missing(self) -> int:
        return len(self.params) - len(self.committed)

    def digest(self) -> str:
        """The uploaded weights' digest, as the edge computes its own; empty until all are in."""
        return weights_digest(self.split.graph_module) if not self.missing else ""

    def segment(self, cut: int, end: int | None, request_id: int) -> PreparedSegment:
        """The segment from ``cut`` to ``end``, if every parameter it reads is served."""
        key = (cut, end)
        if key not in self._segments:
            started = time.monotonic_ns()
            try:
                segment = self.split.segment(cut, end).to(self.device)
                live = self.split.live(cut)
                sends = () if end is None else tuple(crossing.name for crossing in self.split.live(end))
                last = len(self.split.layers) if end is None else self.split.cut(end).index
                first = self.split.cut(cut).index
            except BadInput as error:
                raise FrameError("mismatch", str(error), request_id) from None
            needed = sorted(set().union(*self.split.layer_params[first:last]))
            self._needs[key] = needed
            self._segments[key] = PreparedSegment(segment, live, sends, "", time.monotonic_ns() - started)
        lacking = next((name for name in self._needs[key] if name not in self.committed), None)
        if lacking is not None:
            raise FrameError(
                "mismatch",
                f"segment from cut {cut} to {'the output' if end is None else f'cut {end}'} needs '{lacking}', "
                "not uploaded yet",
                request_id,
            )
        return self._segments[key]


class SessionStore:
    """The open sessions, at most ``limit`` (a client closes its own; the oldest is not dropped for
    a newcomer, whose open is refused instead, so no upload in progress loses its session)."""

    def __init__(self, device: torch.device, policy: ModelPolicy, limit: int = 2):
        self.device = device
        self.policy = policy
        self.limit = limit
        self._sessions: OrderedDict[str, UploadSession] = OrderedDict()

    def open(self, session: str, spec: ModelSpec, request_id: int) -> UploadSession:
        if session in self._sessions:
            raise FrameError("refused", f"header field session: {session} is already open", request_id)
        if len(self._sessions) >= self.limit:
            raise FrameError(
                "refused", f"this worker holds {self.limit} upload sessions already; close one first", request_id
            )
        self.policy.check(spec, request_id)
        self._sessions[session] = UploadSession(spec, self.device, request_id)
        return self._sessions[session]

    def get(self, session: str, request_id: int) -> UploadSession:
        found = self._sessions.get(session)
        if found is None:
            raise FrameError("refused", f"header field session: no open upload session {session}", request_id)
        return found

    def close(self, session: str, request_id: int) -> None:
        self.get(session, request_id)
        del self._sessions[session]

    def loaded(self) -> list[str]:
        return [f"{item.spec.name} upload session, stage {item.stages}" for item in self._sessions.values()]


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
