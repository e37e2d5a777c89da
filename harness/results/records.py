"""The record of one inference: every duration as integer nanoseconds, every byte count.

Durations come from the monotonic clock of the host that did the work; ``transfer_ns`` is derived
on the edge as end-to-end minus the work of both hosts, so no cross-host clock is ever compared.
``started_at_ns`` is wall-clock time, kept only to order records and match them with logs.
"""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class InferenceRecord:
    run: str
    model: str
    granularity: str
    cut: int
    layer: str
    repeat: int
    input: int
    request: int
    edge_ns: int
    encode_ns: int
    transfer_ns: int
    cloud_decode_ns: int
    cloud_ns: int
    cloud_encode_ns: int
    decode_ns: int
    e2e_ns: int
    bytes_raw: int
    bytes_wire: int
    reply_bytes_raw: int
    reply_bytes_wire: int
    compression: str
    shaping: str
    rate: float
    delay_ns: int
    started_at_ns: int
    task: str = ""
    """What the manifest's per-input task made of the output (JSON), or empty without one."""
    pipeline: str = ""
    """In a sweep over tiers, the hosts and cuts the inference went through (``rpi1>3>jetson1>13>gpu1``:
    the edge to cut 3, then jetson1 to cut 13, then gpu1 to the output); empty for one edge and one cloud."""
    exit: int = 0
    """With early exits: the exit the sample left at (numbered in the plan, the edge's first), or 0
    where it reached the final classifier."""
    exit_host: str = ""
    """``edge`` or ``cloud`` where the sample left at an exit; empty at the final classifier."""
    confidence: float | None = None
    """The confidence of the exit the sample left at; empty at the final classifier."""
    threshold: float | None = None
    """The confidence threshold (c_thr) of the run; empty without exits."""
    predicted: int | None = None
    """With a labelled dataset: the class the model (or the exit it left at) answered."""
    label: int | None = None
    """With a labelled dataset: the sample's true class."""
    edge_peak_rss: int | None = None
    """The edge process's peak resident memory so far, in bytes."""
    cloud_peak_rss: int | None = None
    """The replying worker's peak resident memory so far, in bytes; empty where nothing was sent."""
    codec: str = "none"
    """The cut codec the edge encoded floating tensors with (``bytes_raw``: before it)."""
    codec_encode_ns: int = 0
    """The part of ``encode_ns`` the cut codec took on the edge."""
    cloud_codec_ns: int = 0
    """The part of ``cloud_decode_ns`` undoing the cut codec took on the worker(s)."""
    edge_joules: float | None = None
    """The energy the edge's host used over its work (head and encoding; the whole model where
    nothing was sent); empty where it has no power source."""
    cloud_joules: float | None = None
    """The energy the worker hosts used over their busy windows, summed; empty where one has no
    power source or nothing was sent."""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FailedInference:
    """An inference that did not complete (the worker died or went quiet), kept beside the records:
    the retry that succeeded is an ordinary record, so records stay one row per measured inference."""

    run: str
    model: str
    cut: int
    repeat: int
    input: int
    attempt: int
    error: str
    at_ns: int
    """Wall-clock time of the failure, to match it with the worker's log."""
    pipeline: str = ""
    """As in ``InferenceRecord``: the pipeline that failed, in a sweep over tiers."""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HopRecord:
    """One worker's share of an inference through a pipeline, beside its ``InferenceRecord`` (whose
    ``cloud_*`` columns are the sums over the hops): the cut range it ran, its own durations and the
    bytes it received. Hop 1 is the first worker after the edge."""

    run: str
    request: int
    hop: int
    endpoint: str
    start_cut: int
    end_cut: int
    """-1 for the last hop, which runs to the model's output."""
    decode_ns: int
    compute_ns: int
    encode_ns: int
    busy_ns: int
    bytes_raw: int
    bytes_wire: int
    host: str = ""
    """The worker's inventory host, where a sweep knows it (its endpoint says where it listened)."""
    pipeline: str = ""
    repeat: int = 0
    """With ``run`` and ``pipeline``, the inference's place in its sweep, as in ``InferenceRecord``."""

    def as_dict(self) -> dict:
        return asdict(self)
