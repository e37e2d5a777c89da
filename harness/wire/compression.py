"""Compression of tensor buffers with blosc2, chosen per manifest: codec, level and shuffle.

Activations after a ReLU are half zeros, so a fast codec often halves what crosses a slow link;
``none`` sends the tensor's own memory. Decompression checks blosc2's own header against the frame
header before touching the data, so a frame cannot make the receiver allocate or write more than
the sender declared and the limits allow.
"""

from dataclasses import dataclass

import blosc2
import numpy as np

from harness.errors import BadInput

CODECS = {
    "none": None,
    "blosclz": blosc2.Codec.BLOSCLZ,
    "lz4": blosc2.Codec.LZ4,
    "lz4hc": blosc2.Codec.LZ4HC,
    "zlib": blosc2.Codec.ZLIB,
    "zstd": blosc2.Codec.ZSTD,
}
SHUFFLES = {"none": blosc2.Filter.NOFILTER, "byte": blosc2.Filter.SHUFFLE, "bit": blosc2.Filter.BITSHUFFLE}
HEADER_BYTES = blosc2.MAX_OVERHEAD
THREADED_BYTES = 256 * 1024
"""Below this, blosc2's threads cost more than they save (lz4 on 4 KiB: 172 us with 2 threads, 25 us with 1)."""


class CorruptBuffer(ValueError):
    """A compressed buffer that does not hold what its frame header says."""


@dataclass(frozen=True)
class Compression:
    """How tensors are compressed on the wire; ``codec == "none"`` sends raw memory."""

    codec: str = "none"
    level: int = 5
    shuffle: str = "byte"

    def __post_init__(self):
        if self.codec not in CODECS:
            raise BadInput(f"compression codec '{self.codec}': expected one of {', '.join(CODECS)}")
        if not 0 <= self.level <= 9:
            raise BadInput(f"compression level {self.level}: expected 0 to 9")
        if self.shuffle not in SHUFFLES:
            raise BadInput(f"compression shuffle '{self.shuffle}': expected one of {', '.join(SHUFFLES)}")

    @classmethod
    def parse(cls, text: str) -> "Compression":
        """``none``, ``lz4``, ``zstd:3`` or ``lz4:5:bit``: codec, then level, then shuffle."""
        parts = text.strip().lower().split(":")
        if len(parts) > 3 or not parts[0]:
            raise BadInput(f"compression '{text}': expected CODEC[:LEVEL[:SHUFFLE]], like lz4:5:byte")
        level = cls.level
        if len(parts) > 1:
            if not parts[1].isdigit():
                raise BadInput(f"compression '{text}': level '{parts[1]}' is not a number from 0 to 9")
            level = int(parts[1])
        return cls(parts[0], level, parts[2] if len(parts) > 2 else cls.shuffle)

    @property
    def enabled(self) -> bool:
        return self.codec != "none"

    def __str__(self) -> str:
        return "none" if not self.enabled else f"{self.codec}:{self.level}:{self.shuffle}"

    def compress(self, data: np.ndarray, typesize: int) -> bytes:
        """Compress the bytes of ``data`` (a flat uint8 view of a tensor) for elements of ``typesize``."""
        params = blosc2.CParams(
            codec=CODECS[self.codec],
            clevel=self.level,
            typesize=typesize,
            filters=[SHUFFLES[self.shuffle]],
            nthreads=_threads(data.nbytes),
        )
        return blosc2.compress2(data, cparams=params)


def decompress_into(buffer, out: np.ndarray) -> None:
    """Decompress ``buffer`` into ``out`` (a flat uint8 view), after checking blosc2's sizes match."""
    if len(buffer) < HEADER_BYTES:
        raise CorruptBuffer(f"{len(buffer)} bytes is shorter than a blosc2 header ({HEADER_BYTES})")
    nbytes, cbytes, _ = blosc2.get_cbuffer_sizes(buffer)
    if cbytes != len(buffer) or nbytes != out.nbytes:
        raise CorruptBuffer(
            f"blosc2 header says {nbytes} bytes in {cbytes}, frame holds {len(buffer)} for {out.nbytes}"
        )
    try:
        blosc2.decompress2(buffer, dst=out, dparams=blosc2.DParams(nthreads=_threads(nbytes)))
    except (ValueError, RuntimeError) as error:
        raise CorruptBuffer(str(error)) from error


def _threads(nbytes: int) -> int:
    return blosc2.nthreads if nbytes >= THREADED_BYTES else 1
