"""The frames of the worker protocol: a typed JSON header, then one raw buffer per tensor.

The header is parsed and validated in one step by msgspec (strict types, unknown fields refused,
every number and string bounded) and then checked against the receiver's ``Limits``; only then
are buffers looked at. JSON keeps the header readable in a packet capture and unpicklable by
construction. msgspec rather than pydantic because the header is on the path of every inference:
building, encoding and validating one costs about 2 us with msgspec against about 12 us, and a
round trip handles four.

A message on the wire is ``[header, buffer_1, ..., buffer_n]`` (a ROUTER prepends the peer's
identity); buffer ``i`` belongs to the ``i``-th tensor value of the header, in order. Messages
built locally are not validated: the receiver validates everything it is sent.
"""

import math
from dataclasses import dataclass
from typing import Annotated, Literal, get_args

import msgspec

from harness.wire.codecs import WIRE_PATTERN, payload_bytes
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
ErrorCode = Literal["bad-frame", "too-large", "mismatch", "unknown-model", "refused", "unreachable", "failed"]

Label = Annotated[str, msgspec.Meta(max_length=256)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
RequestId = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Dimension = Annotated[int, msgspec.Meta(ge=0, le=2**31)]
Cut = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
Version = Literal[PROTOCOL]
Endpoint = Annotated[
    str, msgspec.Meta(pattern=r"^(tcp://[A-Za-z0-9_.\-\[\]:]{1,255}|ipc://[^\s]{1,255}|inproc://[^\s]{1,255})$")
]
PeerId = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}$")]
"""The routing id a client gives its socket to the last hop of a pipeline (16 random bytes, hex)."""
SessionId = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}$")]
"""An upload session, named by the client that opened it (16 random bytes, hex)."""
MAX_HOPS = 16


class _Tagged(msgspec.Struct, tag_field="kind", forbid_unknown_fields=True, frozen=True):
    """A message or value whose JSON object names its kind; ``kind`` reads that tag back."""

    @property
    def kind(self) -> str:
        return self.__struct_config__.tag


class _Plain(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A part of a message that travels inside it, held to the same rules."""


class CutSpec(_Plain, omit_defaults=True):
    """The cut codec a tensor crossed as (codecs.py): its buffer holds the codec's payload, which
    decodes to the tensor's dtype and shape; ``scale`` and ``zero`` of per-tensor int8, the channel
    ``axis`` of per-channel codecs (None: one channel), the values ``kept`` by top-k."""

    codec: Annotated[str, msgspec.Meta(pattern=WIRE_PATTERN)]
    scale: Annotated[float, msgspec.Meta(gt=0)] | None = None
    zero: Annotated[int, msgspec.Meta(ge=0, le=255)] | None = None
    axis: Annotated[int, msgspec.Meta(ge=0, le=7)] | None = None
    kept: Count = 0


class TensorSpec(_Tagged, tag="tensor", omit_defaults=True):
    """One tensor: its buffer is the next frame, ``wire`` bytes long, ``nbytes`` once decompressed
    (the tensor's own bytes, or its cut codec's payload). ``cut`` is left out of the header where
    there is none, so a message without codecs is byte for byte what it was before them."""

    name: Label
    dtype: Literal[DTYPES]
    shape: Annotated[tuple[Dimension, ...], msgspec.Meta(max_length=8)]
    codec: Literal[tuple(CODECS)]
    nbytes: Count
    wire: Count
    cut: CutSpec | None = None


class ScalarSpec(_Tagged, tag="scalar"):
    """A Python number live across a cut (a batch size read from a shape); it travels in the header."""

    name: Label
    dtype: Literal["int", "float", "bool"]
    value: bool | int | float


Value = TensorSpec | ScalarSpec
Values = Annotated[tuple[Value, ...], msgspec.Meta(max_length=4096)]


class ModelSpec(_Plain):
    """Which model the worker builds: the same name, granularity, input and weights as the edge."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")]
    granularity: Literal["node", "module", "block"]
    input_shape: Annotated[
        tuple[Annotated[int, msgspec.Meta(ge=1, le=65536)], ...], msgspec.Meta(min_length=1, max_length=8)
    ]
    weights: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.\-/]{1,256}$")] = "none"
    classes: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None


class ExitsSpec(_Plain):
    """The exits of the worker's part (seed 002's progressive inference): each built from
    ``template`` (a built-in name, ``package.module:function`` from the worker's user packages, or a
    template file in its weights directory) for the tensor live after each of ``cuts``, with
    ``classes`` logits and the weights of exits ``first``, ``first + 1``, ... of the file
    ``weights`` (in the weights directory). A sample leaves at the first exit whose ``confidence``
    is strictly greater than ``threshold``. ``carried``: exits attached before the request's cut
    (which straddle it), tried here first on their inputs, sent after the cut's values in order;
    they are exits ``first - len(carried)`` to ``first - 1``."""

    template: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:\-/]{1,256}$")]
    cuts: Annotated[tuple[Cut, ...], msgspec.Meta(max_length=8)]
    first: Annotated[int, msgspec.Meta(ge=1, le=64)]
    classes: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    confidence: Literal["max_softmax", "entropy", "margin"]
    threshold: Annotated[float, msgspec.Meta(ge=0, le=1)]
    weights: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.\-/]{1,256}$")]
    carried: Annotated[tuple[Cut, ...], msgspec.Meta(max_length=8)] = ()


class CompressionSpec(_Plain):
    codec: Literal[tuple(CODECS)] = "none"
    level: Annotated[int, msgspec.Meta(ge=0, le=9)] = 5
    shuffle: Literal[tuple(SHUFFLES)] = "byte"


class Timings(_Plain, omit_defaults=True):
    """The worker's own durations for one request, from its monotonic clock; ``codec_ns``: the part
    of ``decode_ns`` spent undoing the cut codec; ``joules``: the energy its host used over
    ``busy_ns`` (None: it has no power source)."""

    decode_ns: Count
    compute_ns: Count
    encode_ns: Count
    busy_ns: Count
    codec_ns: Count = 0
    joules: Annotated[float, msgspec.Meta(ge=0)] | None = None


class Pace(_Plain):
    """An emulated link a sender holds its message for: ``rate`` bytes per second (None: unlimited)
    and ``delay_ns`` one way."""

    rate: Annotated[float, msgspec.Meta(gt=0)] | None = None
    delay_ns: Count = 0


class Hop(_Plain):
    """A later stage of a pipeline: the worker at ``endpoint`` runs from the previous stage's end cut
    to ``end`` (None: to the model's output); ``pace``: the emulated link into it."""

    endpoint: Endpoint
    end: Cut | None = None
    pace: Pace | None = None


class HopFigures(_Plain):
    """What one worker of a pipeline did for a request: its own durations and the bytes it received."""

    timings: Timings
    received_raw: Count
    received_wire: Count


class Ping(_Tagged, tag="ping"):
    id: RequestId
    v: Version = PROTOCOL


class Prepare(_Tagged, tag="prepare"):
    """Load (or find cached) the segment of ``model`` from ``cut`` to ``end`` (None: the tail), and
    connect to the ``next`` worker of its pipeline, so that no inference pays for either."""

    id: RequestId
    model: ModelSpec
    cut: Cut
    end: Cut | None = None
    next: Endpoint | None = None
    v: Version = PROTOCOL


class Infer(_Tagged, tag="infer"):
    """Run the segment from ``cut`` to ``end`` on ``values``. With a ``route``, send the outputs on
    to its first hop (the rest of the route with them) and add this worker's figures to
    ``upstream``; the worker without a route replies, to ``reply_to`` where the client named one
    (its socket to that worker), else to whoever sent the request. Under an emulated link each
    worker holds what it sends for the next hop's ``pace``, the last one its reply for
    ``reply_pace``."""

    id: RequestId
    model: ModelSpec
    cut: Cut
    values: Values
    reply: CompressionSpec = CompressionSpec()
    end: Cut | None = None
    route: Annotated[tuple[Hop, ...], msgspec.Meta(max_length=MAX_HOPS)] = ()
    reply_to: PeerId | None = None
    reply_pace: Pace | None = None
    upstream: Annotated[tuple[HopFigures, ...], msgspec.Meta(max_length=MAX_HOPS)] = ()
    exits: ExitsSpec | None = None
    session: SessionId | None = None
    """Run the segment of an upload session's model (its parameters as uploaded so far)."""
    v: Version = PROTOCOL


class Open(_Tagged, tag="open"):
    """Start upload session ``session``: the worker builds ``model``'s architecture (its ``weights``
    are not loaded) with every parameter and buffer empty, to be filled by ``chunk`` requests."""

    id: RequestId
    session: SessionId
    model: ModelSpec
    v: Version = PROTOCOL


class Chunk(_Tagged, tag="chunk"):
    """Bytes ``offset`` onwards of parameter (or buffer) ``param``, which the sender holds as
    ``dtype`` of ``shape``; the bytes are the one uint8 value's buffer."""

    id: RequestId
    session: SessionId
    param: Label
    dtype: Literal[DTYPES]
    shape: Annotated[tuple[Dimension, ...], msgspec.Meta(max_length=8)]
    offset: Count
    values: tuple[TensorSpec]
    v: Version = PROTOCOL


UPLOAD_WINDOW = 4
"""How many chunks an edge keeps unacknowledged: enough to keep a link with a short round trip busy,
few enough that a query's request finds little of the upload ahead of it where the link queues."""


class Commit(_Tagged, tag="commit"):
    """Partition ``stage`` is complete: its ``params`` (each fully received) may be served from now."""

    id: RequestId
    session: SessionId
    stage: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    params: Annotated[tuple[Label, ...], msgspec.Meta(max_length=100_000)]
    v: Version = PROTOCOL


class Close(_Tagged, tag="close"):
    """End upload session ``session`` and free its model."""

    id: RequestId
    session: SessionId
    v: Version = PROTOCOL


class Profile(_Tagged, tag="profile"):
    """Time every layer of ``model`` on the worker's host (the whole model there, with hooks)."""

    id: RequestId
    model: ModelSpec
    repeats: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    warmup: Annotated[int, msgspec.Meta(ge=0, le=1000)]
    v: Version = PROTOCOL


class Probe(_Tagged, tag="probe"):
    """Measure the link from this worker to the peer at ``target``: ``echoes`` pings for the round
    trip, then one transfer of ``bulk_bytes`` for the throughput. A peer that does not answer within
    ``timeout_ms`` makes the answer a gap, not an error. ``pace``: the emulated link to the peer,
    which the worker holds its pings and its transfer for, as it holds what it forwards."""

    id: RequestId
    target: Endpoint
    echoes: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    bulk_bytes: Annotated[int, msgspec.Meta(ge=1, le=2**30)] = 4 * 2**20
    timeout_ms: Annotated[int, msgspec.Meta(ge=1, le=600_000)] = 10_000
    pace: Pace | None = None
    v: Version = PROTOCOL


class Sink(_Tagged, tag="sink"):
    """Bytes to be received and acknowledged, nothing more: the bulk transfer of a probe."""

    id: RequestId
    values: Values
    v: Version = PROTOCOL


class LayerFigures(_Plain):
    name: Label
    op: Label
    median_ns: Count
    p95_ns: Count


class Profiled(_Tagged, tag="profiled"):
    id: RequestId
    layers: Annotated[tuple[LayerFigures, ...], msgspec.Meta(max_length=100_000)]
    v: Version = PROTOCOL


class State(_Tagged, tag="state"):
    """The worker's answer to a ping."""

    id: RequestId
    pid: int
    version: str
    device: str
    uptime_ns: Count
    requests: Count
    errors: Count
    clients: Count
    loaded: tuple[str, ...]
    supervisor: int = 0
    restarts: Count = 0
    v: Version = PROTOCOL


class Ready(_Tagged, tag="ready"):
    id: RequestId
    load_ns: Count
    live: tuple[str, ...]
    weights: Annotated[str, msgspec.Meta(max_length=64)]
    v: Version = PROTOCOL


class Result(_Tagged, tag="result"):
    """The model's output; ``timings`` are the replying worker's, ``hops`` the figures of every
    worker of a pipeline in order, the replying one last (empty when one worker did all)."""

    id: RequestId
    values: Values
    timings: Timings
    hops: Annotated[tuple[HopFigures, ...], msgspec.Meta(max_length=MAX_HOPS)] = ()
    exit: Annotated[int, msgspec.Meta(ge=0, le=64)] = 0
    """With exits: the exit the sample left at (its number in the plan), or 0 at the final classifier."""
    confidence: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    peak_rss: Count = 0
    """The replying worker's peak resident memory so far, in bytes (0: not told)."""
    v: Version = PROTOCOL


class Probed(_Tagged, tag="probed"):
    """A probe's figures: round trips in seconds, the bulk transfer's payload bytes per second (its
    best round trip taken out), or ``gap`` saying why there are none."""

    id: RequestId
    target: Endpoint
    rtt_s: Annotated[tuple[float, ...], msgspec.Meta(max_length=100)] = ()
    rate: float | None = None
    gap: Annotated[str, msgspec.Meta(max_length=4096)] = ""
    v: Version = PROTOCOL


class Sunk(_Tagged, tag="sunk"):
    id: RequestId
    nbytes: Count
    v: Version = PROTOCOL


class Opened(_Tagged, tag="opened"):
    """An upload session's model is built: ``params`` tensors of ``param_bytes`` in all expected."""

    id: RequestId
    session: SessionId
    params: Count
    param_bytes: Count
    load_ns: Count
    v: Version = PROTOCOL


class Stored(_Tagged, tag="stored"):
    """A chunk is in: ``received`` bytes of ``param`` so far, of ``nbytes``."""

    id: RequestId
    param: Label
    received: Count
    nbytes: Count
    v: Version = PROTOCOL


class Committed(_Tagged, tag="committed"):
    """Partition ``stage`` is served from now; building it took ``build_ns``. ``digest``: the uploaded
    weights' digest once every parameter is in (empty before)."""

    id: RequestId
    stage: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    build_ns: Count
    missing: Count
    digest: Annotated[str, msgspec.Meta(max_length=64)] = ""
    v: Version = PROTOCOL


class Closed(_Tagged, tag="closed"):
    id: RequestId
    v: Version = PROTOCOL


class Error(_Tagged, tag="error"):
    id: RequestId
    code: ErrorCode
    message: Annotated[str, msgspec.Meta(max_length=4096)]
    v: Version = PROTOCOL


Request = Ping | Prepare | Infer | Profile | Probe | Sink | Open | Chunk | Commit | Close
Reply = State | Ready | Result | Profiled | Probed | Sunk | Opened | Stored | Committed | Closed | Error
_REQUEST = msgspec.json.Decoder(Request)
_REPLY = msgspec.json.Decoder(Reply)
_KINDS = {
    _REQUEST: [kind.__struct_config__.tag for kind in get_args(Request)],
    _REPLY: [kind.__struct_config__.tag for kind in get_args(Reply)],
}
_VALUE_KINDS = [kind.__struct_config__.tag for kind in get_args(Value)]
_ENCODER = msgspec.json.Encoder()


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


def encode(message: msgspec.Struct, buffers=()) -> list:
    """The frames of ``message``: its JSON header then the buffers, unchanged (sent zero-copy)."""
    return [_ENCODER.encode(message), *buffers]


def decode_request(frames: list, limits: Limits) -> tuple[Request, list]:
    """Parse and check a request's frames; raises ``FrameError`` naming what is wrong."""
    return _decode(frames, limits, _REQUEST)


def decode_reply(frames: list, limits: Limits) -> tuple[Reply, list]:
    """Parse and check a reply's frames, with the same checks a worker applies to requests."""
    return _decode(frames, limits, _REPLY)


def _decode(frames: list, limits: Limits, decoder: msgspec.json.Decoder):
    if not frames:
        raise FrameError("bad-frame", "empty message")
    header = frames[0]
    if len(header) > limits.header_bytes:
        raise FrameError("too-large", f"header of {len(header)} bytes exceeds the limit of {limits.header_bytes}")
    text = getattr(header, "buffer", header)
    try:
        message = decoder.decode(text)
    except msgspec.DecodeError as error:
        raise FrameError("bad-frame", _describe(error, _KINDS[decoder]), _request_id_of(text)) from None
    buffers = frames[1:]
    _check_values(message, buffers, limits)
    return message, buffers


def _check_values(message, buffers: list, limits: Limits) -> None:
    values = getattr(message, "values", ())
    tensors = [value for value in values if isinstance(value, TensorSpec)]
    if len(buffers) != len(tensors):
        raise FrameError(
            "bad-frame", f"header lists {len(tensors)} tensors but {len(buffers)} buffers follow", message.id
        )
    total = 0
    for spec, buffer in zip(tensors, buffers, strict=True):
        decoded = math.prod(spec.shape) * ITEMSIZE[spec.dtype]
        expected = decoded if spec.cut is None else _payload_bytes(spec, message.id)
        if expected is not None and spec.nbytes != expected:
            holds = f"shape {list(spec.shape)} of {spec.dtype}" + (f" as {spec.cut.codec}" if spec.cut else "")
            raise FrameError(
                "bad-frame", f"tensor '{spec.name}': {spec.nbytes} bytes declared, {holds} holds {expected}", message.id
            )
        total += max(spec.nbytes, decoded)
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


def _payload_bytes(spec: TensorSpec, request_id: int) -> int | None:
    try:
        return payload_bytes(spec.cut.codec, spec.dtype, spec.shape, msgspec.structs.asdict(spec.cut))
    except ValueError as error:
        raise FrameError("bad-frame", f"tensor '{spec.name}': {error}", request_id) from None


def _describe(error: msgspec.DecodeError, kinds: list[str]) -> str:
    """msgspec's account of the problem, led by the path of the field it is in:
    ``Expected `int` >= 0 - at `$.values[0].shape[1]``` becomes
    ``header field values[0].shape[1]: Expected `int` >= 0``. An unknown kind lists the known ones."""
    problem, _, where = str(error).partition(" - at `$")
    where = where.rstrip("`").removeprefix(".")
    if where.endswith("kind") and problem.startswith("Invalid value"):
        problem += f" (expected {' or '.join(kinds if where == 'kind' else _VALUE_KINDS)})"
    return (f"header field {where}: " if where else "header: ") + problem[:400]


class _IdOnly(msgspec.Struct):
    id: RequestId


_ID_ONLY = msgspec.json.Decoder(_IdOnly)


def _request_id_of(header) -> int:
    """The request id of a header that failed validation, when it can be read at all, so the sender
    can match the error to its request; 0 otherwise."""
    try:
        return _ID_ONLY.decode(header).id
    except msgspec.DecodeError:
        return 0
