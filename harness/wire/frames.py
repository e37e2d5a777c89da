"""The frames of the worker protocol: a typed JSON header, then one raw buffer per tensor.

The header is parsed and validated in one step by pydantic (strict types, unknown fields refused,
every number bounded) and then checked against the receiver's ``Limits``; only then are buffers
looked at. JSON keeps the header readable in a packet capture and unpicklable by construction.

A message on the wire is ``[header, buffer_1, ..., buffer_n]`` (a ROUTER prepends the peer's
identity); buffer ``i`` belongs to the ``i``-th tensor value of the header, in order.
"""

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from harness.wire.compression import CODECS, HEADER_BYTES, SHUFFLES

PROTOCOL = 1
DTYPES = ("float32", "float16", "bfloat16", "float64", "uint8", "int8", "int16", "int32", "int64", "bool")
ITEMSIZE = {
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float64": 8,
    "uint8": 1,
    "int8": 1,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "bool": 1,
}
ErrorCode = Literal["bad-frame", "too-large", "mismatch", "unknown-model", "refused", "failed"]

Name = Annotated[str, Field(min_length=1, max_length=256)]
Count = Annotated[int, Field(ge=0, le=2**62)]
RequestId = Annotated[int, Field(ge=0, le=2**63 - 1)]
Dimension = Annotated[int, Field(ge=0, le=2**31)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class TensorSpec(_Strict):
    """One tensor: its buffer is the next frame, ``wire`` bytes long, ``nbytes`` once decoded."""

    kind: Literal["tensor"] = "tensor"
    name: str = Field(max_length=256)
    dtype: Literal[DTYPES]
    shape: tuple[Dimension, ...] = Field(max_length=8)
    codec: Literal[tuple(CODECS)]
    nbytes: Count
    wire: Count


class ScalarSpec(_Strict):
    """A Python number live across a cut (a batch size read from a shape); it travels in the header."""

    kind: Literal["scalar"] = "scalar"
    name: str = Field(max_length=256)
    dtype: Literal["int", "float", "bool"]
    value: bool | int | float


Value = Annotated[TensorSpec | ScalarSpec, Field(discriminator="kind")]


class ModelSpec(_Strict):
    """Which model the worker builds: the same name, granularity, input and weights as the edge."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")
    granularity: Literal["node", "module", "block"]
    input_shape: tuple[Annotated[int, Field(ge=1, le=65536)], ...] = Field(min_length=1, max_length=8)
    weights: str = Field(default="none", pattern=r"^[A-Za-z0-9_.\-/]{1,256}$")


class CompressionSpec(_Strict):
    codec: Literal[tuple(CODECS)] = "none"
    level: int = Field(default=5, ge=0, le=9)
    shuffle: Literal[tuple(SHUFFLES)] = "byte"


class Timings(_Strict):
    """The worker's own durations for one request, from its monotonic clock."""

    decode_ns: Count
    compute_ns: Count
    encode_ns: Count
    busy_ns: Count


class Ping(_Strict):
    v: Literal[PROTOCOL] = PROTOCOL
    kind: Literal["ping"] = "ping"
    id: RequestId


class Prepare(_Strict):
    """Load (or find cached) the tail of ``model`` at ``cut``, so that no inference pays for it."""

    v: Literal[PROTOCOL] = PROTOCOL
    kind: Literal["prepare"] = "prepare"
    id: RequestId
    model: ModelSpec
    cut: int = Field(ge=0, le=1_000_000)


class Infer(_Strict):
    v: Literal[PROTOCOL] = PROTOCOL
    kind: Literal["infer"] = "infer"
    id: RequestId
    model: ModelSpec
    cut: int = Field(ge=0, le=1_000_000)
    values: tuple[Value, ...] = Field(max_length=4096)
    reply: CompressionSpec = CompressionSpec()


class Profile(_Strict):
    """Time every layer of ``model`` on the worker's host (the whole model there, with hooks)."""

    v: Literal[PROTOCOL] = PROTOCOL
    kind: Literal["profile"] = "profile"
    id: RequestId
    model: ModelSpec
    repeats: int = Field(ge=1, le=1000)
    warmup: int = Field(ge=0, le=1000)


class LayerFigures(_Strict):
    name: str = Field(max_length=256)
    op: str = Field(max_length=256)
    median_ns: Count
    p95_ns: Count


class Profiled(_Strict):
    v: Literal[PROTOCOL] = PROTOCOL
    kind: Literal["profiled"] = "profiled"
    id: RequestId
    layers: tuple[LayerFigures, ...] = Field(max_length=100_000)


class State(_Strict):
    """The worker's answer to a ping."""

    v: Literal[PROTOCOL] = PROTOCOL
    kind: Literal["state"] = "state"
    id: RequestId
    pid: int
    supervisor: int = 0
    restarts: Count = 0
    version: str
    device: str
    uptime_ns: Count
    requests: Count
    errors: Count
    clients: Count
    loaded: tuple[str, ...]


class Ready(_Strict):
    v: Literal[PROTOCOL] = PROTOCOL
    kind: Literal["ready"] = "ready"
    id: RequestId
    load_ns: Count
    live: tuple[str, ...]
    weights: str = Field(max_length=64)


class Result(_Strict):
    v: Literal[PROTOCOL] = PROTOCOL
    kind: Literal["result"] = "result"
    id: RequestId
    values: tuple[Value, ...] = Field(max_length=4096)
    timings: Timings


class Error(_Strict):
    v: Literal[PROTOCOL] = PROTOCOL
    kind: Literal["error"] = "error"
    id: RequestId
    code: ErrorCode
    message: str = Field(max_length=4096)


Request = Ping | Prepare | Infer | Profile
Reply = State | Ready | Result | Profiled | Error
_REQUEST = TypeAdapter(Annotated[Request, Field(discriminator="kind")])
_REPLY = TypeAdapter(Annotated[Reply, Field(discriminator="kind")])


class FrameError(Exception):
    """A message that cannot be served; becomes an ``Error`` reply with ``code`` and ``request_id``."""

    def __init__(self, code: str, message: str, request_id: int = 0):
        super().__init__(message)
        self.code = code
        self.request_id = request_id


@dataclass(frozen=True)
class Limits:
    """What a receiver accepts: header size, tensor bytes per message, number of values."""

    header_bytes: int = 64 * 1024
    message_bytes: int = 256 * 1024 * 1024

    @property
    def frame_bytes(self) -> int:
        """The largest single frame a socket should accept at all (libzmq drops the peer beyond it)."""
        return self.message_bytes + HEADER_BYTES


def encode(message: BaseModel, buffers=()) -> list:
    """The frames of ``message``: its JSON header then the buffers, unchanged (sent zero-copy)."""
    return [message.model_dump_json().encode(), *buffers]


def decode_request(frames: list, limits: Limits) -> tuple[Request, list]:
    """Parse and check a request's frames; raises ``FrameError`` naming what is wrong."""
    return _decode(frames, limits, _REQUEST)


def decode_reply(frames: list, limits: Limits) -> tuple[Reply, list]:
    """Parse and check a reply's frames, with the same checks a worker applies to requests."""
    return _decode(frames, limits, _REPLY)


def _decode(frames: list, limits: Limits, adapter: TypeAdapter):
    if not frames:
        raise FrameError("bad-frame", "empty message")
    header = frames[0]
    if len(header) > limits.header_bytes:
        raise FrameError("too-large", f"header of {len(header)} bytes exceeds the limit of {limits.header_bytes}")
    try:
        message = adapter.validate_json(bytes(header))
    except ValidationError as error:
        raise FrameError("bad-frame", _describe(error), _request_id_of(header)) from None
    buffers = frames[1:]
    _check_values(message, buffers, limits)
    return message, buffers


def _check_values(message, buffers: list, limits: Limits) -> None:
    values = getattr(message, "values", ())
    tensors = [value for value in values if value.kind == "tensor"]
    if len(buffers) != len(tensors):
        raise FrameError(
            "bad-frame", f"header lists {len(tensors)} tensors but {len(buffers)} buffers follow", message.id
        )
    total = 0
    for spec, buffer in zip(tensors, buffers, strict=True):
        elements = 1
        for size in spec.shape:
            elements *= size
        if spec.nbytes != elements * ITEMSIZE[spec.dtype]:
            raise FrameError(
                "bad-frame",
                f"tensor '{spec.name}': {spec.nbytes} bytes declared, shape {list(spec.shape)} of {spec.dtype} "
                f"holds {elements * ITEMSIZE[spec.dtype]}",
                message.id,
            )
        total += spec.nbytes
        if total > limits.message_bytes:
            raise FrameError(
                "too-large", f"tensors exceed the limit of {limits.message_bytes} bytes per message", message.id
            )
        if len(buffer) != spec.wire:
            raise FrameError(
                "bad-frame", f"tensor '{spec.name}': {spec.wire} bytes declared, {len(buffer)} received", message.id
            )
        if spec.codec == "none" and spec.wire != spec.nbytes:
            raise FrameError(
                "bad-frame",
                f"tensor '{spec.name}': uncompressed but wire {spec.wire} != nbytes {spec.nbytes}",
                message.id,
            )


def _describe(error: ValidationError) -> str:
    """The first validation problem, with the path of the field it is in (pydantic names the kind first)."""
    first = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return (f"header field {where}: " if where else "header: ") + first["msg"][:400]


class _IdOnly(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    id: RequestId


_ID_ONLY = TypeAdapter(_IdOnly)


def _request_id_of(header) -> int:
    """The request id of a header that failed validation, when it can be read at all, so the sender
    can match the error to its request; 0 otherwise."""
    try:
        return _ID_ONLY.validate_json(bytes(header)).id
    except ValidationError:
        return 0
