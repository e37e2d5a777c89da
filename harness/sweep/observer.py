"""The observer's end of the record stream: edge hosts push, the controller pulls and writes.

Messages are JSON objects (never pickles), each checked before use: ``start`` announces a run and
how many records it will produce, ``record`` carries one inference, ``failure`` one inference the
worker did not finish, ``layers`` a host's per-layer timings, ``upload`` one repeat of an
incremental upload (its partitions and queries), ``done`` and ``failed`` end an edge host's plan. A
record is validated field by field against ``InferenceRecord``, a failure against
``FailedInference``, an upload's rows against ``PartitionRecord`` and ``QueryRecord``.

On loopback the stream needs no keys. Off loopback (a lab's observer host) the receiver is a
CurveZMQ server with the observer's key pair, accepting only the edge keys of the sweep, as the
worker does: records cross the same network as the tensors.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Annotated, Literal

import zmq
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from zmq.auth.thread import ThreadAuthenticator

from harness.errors import BadInput
from harness.results import FailedInference, InferenceRecord
from harness.results.records import HopRecord
from harness.results.uploads import PartitionRecord, QueryRecord
from harness.wire.frames import MAX_HOPS
from harness.wire.keys import ClientKeys, WorkerKeys
from harness.wire.sockets import check_endpoint, is_loopback


def _checked_fields(kind: type) -> type[BaseModel]:
    """A strict model of a record dataclass's fields, to check a row from the wire before making one."""
    config = ConfigDict(strict=True, extra="forbid")
    declared = {item.name: (item.type, ...) for item in fields(kind)}
    return create_model(f"{kind.__name__}Fields", __config__=config, **declared)


_RECORD_FIELDS = _checked_fields(InferenceRecord)
_HOP_FIELDS = _checked_fields(HopRecord)
_FAILURE_FIELDS = _checked_fields(FailedInference)
_PARTITION_FIELDS = _checked_fields(PartitionRecord)
_QUERY_FIELDS = _checked_fields(QueryRecord)
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RunStarted(_Message):
    kind: Literal["start"] = "start"
    host: str = Field(max_length=256)
    run: str = Field(max_length=256)
    expected: int = Field(ge=0)


class RecordMessage(_Message):
    """One inference; through a pipeline, each worker's ``HopRecord`` beside it."""

    kind: Literal["record"] = "record"
    host: str = Field(max_length=256)
    record: dict
    hops: list[dict] = Field(default_factory=list, max_length=MAX_HOPS)


class FailureMessage(_Message):
    kind: Literal["failure"] = "failure"
    host: str = Field(max_length=256)
    failure: dict


class LayerRow(_Message):
    name: str = Field(max_length=256)
    op: str = Field(max_length=256)
    median_ns: int = Field(ge=0)
    p95_ns: int = Field(ge=0)


class LayersMessage(_Message):
    """Per-layer latency of a run's model on one host: ``role`` edge or cloud, or ``worker`` for a
    worker of a pipeline over tiers, named by its inventory host."""

    kind: Literal["layers"] = "layers"
    host: str = Field(max_length=256)
    role: Literal["edge", "cloud", "worker"]
    run: str = Field(max_length=256)
    model: str = Field(max_length=256)
    repeats: int = Field(ge=1)
    layers: list[LayerRow] = Field(max_length=100_000)


class ReplanMessage(_Message):
    """A re-planning round or a link event of a run over tiers (see ``harness.sweep.adapting``)."""

    kind: Literal["replan"] = "replan"
    host: str = Field(max_length=256)
    run: str = Field(max_length=256)
    at_s: float = Field(ge=0)
    at_ns: int = Field(ge=0)
    """The edge's wall clock, as the records' ``started_at_ns``: a change made outside the run (an
    operator's to a link) lines up with the rounds that saw it."""
    trigger: Literal["interval", "link event"]
    running: str = Field(max_length=4096)
    running_ms: float | None
    best: str = Field(max_length=4096)
    best_ms: float | None
    gain: float | None
    streak: int = Field(ge=0)
    switched: bool
    reason: str = Field(max_length=4096)
    measure_ms: float = Field(ge=0)
    switch_ms: float = Field(ge=0)
    links: str = Field(max_length=65536)


class UploadMessage(_Message):
    """One repeat of an incremental upload: a row per partition and one per query."""

    kind: Literal["upload"] = "upload"
    host: str = Field(max_length=256)
    run: str = Field(max_length=256)
    repeat: int = Field(ge=0)
    partitions: list[dict] = Field(max_length=100_000)
    queries: list[dict] = Field(max_length=100_000)


class PlanEnded(_Message):
    kind: Literal["done", "failed"]
    host: str = Field(max_length=256)
    message: str = Field(default="", max_length=4096)


Message = Annotated[
    RunStarted | RecordMessage | FailureMessage | LayersMessage | ReplanMessage | UploadMessage | PlanEnded,
    Field(discriminator="kind"),
]
_MESSAGE = TypeAdapter(Message)


@dataclass
class Received:
    """One message from an edge host; ``record`` or ``failure`` is set for those, ``problem`` for rejects."""

    message: (
        RunStarted | RecordMessage | FailureMessage | LayersMessage | ReplanMessage | UploadMessage | PlanEnded | None
    )
    record: InferenceRecord | None = None
    problem: str = ""
    failure: FailedInference | None = None
    hops: list[HopRecord] = field(default_factory=list)
    upload: "UploadRepeat | None" = None


@dataclass(frozen=True)
class UploadRepeat:
    """One repeat of an upload run, checked field by field."""

    run: str
    repeat: int
    partitions: list[PartitionRecord]
    queries: list[QueryRecord]


def upload_repeat(row: dict) -> UploadRepeat:
    """An ``upload`` message's (or spool line's) content, each row checked against its record."""
    return UploadRepeat(
        row["run"],
        row["repeat"],
        [PartitionRecord(**_PARTITION_FIELDS.model_validate(item).model_dump()) for item in row["partitions"]],
        [QueryRecord(**_QUERY_FIELDS.model_validate(item).model_dump()) for item in row["queries"]],
    )


def encode(message: _Message) -> bytes:
    return message.model_dump_json().encode()


def encode_record(host: str, record: InferenceRecord, hops: Sequence[HopRecord] = ()) -> bytes:
    hop_rows = [hop.as_dict() for hop in hops]
    return json.dumps({"kind": "record", "host": host, "record": record.as_dict(), "hops": hop_rows}).encode()


class RecordReceiver:
    """A PULL socket the edge hosts' plans push to; bound before the playbook starts."""

    def __init__(self, endpoint: str = "tcp://127.0.0.1:*", keys: WorkerKeys | None = None):
        check_endpoint(endpoint, "observer endpoint")
        if keys is None and not is_loopback(endpoint):
            raise BadInput(f"observer endpoint {endpoint}: off loopback the record stream needs the observer's keys")
        self.context = zmq.Context()
        self.authenticator: ThreadAuthenticator | None = None
        self.socket = self.context.socket(zmq.PULL)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self.socket.setsockopt(zmq.LINGER, 0)
        if keys is not None and not is_loopback(endpoint):
            self.authenticator = ThreadAuthenticator(self.context)
            self.authenticator.start()
            self.authenticator.configure_curve(domain="*", location=str(keys.clients))
            self.socket.curve_secretkey = keys.secret
            self.socket.curve_publickey = keys.public
            self.socket.curve_server = True
        try:
            self.socket.bind(endpoint)
        except zmq.ZMQError as error:
            self.close()
            raise BadInput(f"cannot bind the record stream to {endpoint}: {error}") from error
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def receive(self, timeout_ms: int) -> list[Received]:
        """Every message that arrives within ``timeout_ms`` (or is already waiting)."""
        received = []
        while self.socket.poll(timeout_ms if not received else 0):
            received.append(_parse(self.socket.recv()))
        return received

    def close(self) -> None:
        self.socket.close(linger=0)
        if self.authenticator is not None:
            self.authenticator.stop()
        self.context.term()


def _parse(data: bytes) -> Received:
    try:
        message = _MESSAGE.validate_json(data)
        if isinstance(message, RecordMessage):
            checked = _RECORD_FIELDS.model_validate(message.record)
            hops = [HopRecord(**_HOP_FIELDS.model_validate(hop).model_dump()) for hop in message.hops]
            return Received(message, InferenceRecord(**checked.model_dump()), hops=hops)
        if isinstance(message, FailureMessage):
            checked = _FAILURE_FIELDS.model_validate(message.failure)
            return Received(message, failure=FailedInference(**checked.model_dump()))
        if isinstance(message, UploadMessage):
            return Received(message, upload=upload_repeat(message.model_dump()))
        return Received(message)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        return Received(None, problem=f"field {where}: {first['msg']}")


class RecordSender:
    """The edge's end: a PUSH socket to the observer. Closing waits (bounded) for queued messages.
    Off loopback it authenticates with ``keys`` (its own pair, the observer's public key as server)."""

    def __init__(self, endpoint: str, host: str, flush_s: float = 30.0, keys: ClientKeys | None = None):
        check_endpoint(endpoint, "--observer")
        if keys is None and not is_loopback(endpoint):
            raise BadInput(
                f"the observer at {endpoint} is off loopback and only accepts known keys: pass --keys DIR "
                "(holding edge.key_secret and observer.key)"
            )
        self.host = host
        self.flush_ms = int(flush_s * 1000)
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.PUSH)
        self.socket.setsockopt(zmq.SNDHWM, 0)
        if keys is not None and not is_loopback(endpoint):
            self.socket.curve_secretkey = keys.secret
            self.socket.curve_publickey = keys.public
            self.socket.curve_serverkey = keys.server
        self.socket.connect(endpoint)

    def started(self, run: str, expected: int) -> None:
        self.socket.send(encode(RunStarted(host=self.host, run=run, expected=expected)))

    def record(self, record: InferenceRecord, hops: Sequence[HopRecord] = ()) -> None:
        self.socket.send(encode_record(self.host, record, hops))

    def failure(self, failure: FailedInference) -> None:
        self.socket.send(encode(FailureMessage(host=self.host, failure=failure.as_dict())))

    def layers(self, message: "LayersMessage") -> None:
        self.socket.send(encode(message))

    def replan(self, row: dict) -> None:
        self.socket.send(encode(ReplanMessage(host=self.host, **row)))

    def upload(self, row: dict) -> None:
        self.socket.send(encode(UploadMessage(host=self.host, **row)))

    def ended(self, failure: str = "") -> None:
        kind = "failed" if failure else "done"
        self.socket.send(encode(PlanEnded(kind=kind, host=self.host, message=failure[:4096])))

    def close(self) -> None:
        self.socket.close(linger=self.flush_ms)
        self.context.term()
