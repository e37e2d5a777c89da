"""The data plane between edge and cloud: frames, compression, sockets, keys, the emulated link."""

from harness.wire.codecs import CutCodec
from harness.wire.compression import Compression
from harness.wire.frames import FrameError, Limits, ModelSpec
from harness.wire.keys import ClientKeys, WorkerKeys, client_keys, worker_keys
from harness.wire.link import EmulatedLink, parse_delay, parse_rate

__all__ = [
    "ClientKeys",
    "Compression",
    "CutCodec",
    "EmulatedLink",
    "FrameError",
    "Limits",
    "ModelSpec",
    "WorkerKeys",
    "client_keys",
    "parse_delay",
    "parse_rate",
    "worker_keys",
]
