"""Values live across a cut, to and from frame headers and buffers.

Sending, an uncompressed tensor's buffer is its own memory (a flat byte view, so every dtype works,
bfloat16 included); receiving, a tensor is a view of the received frame where its alignment
allows, so the uncompressed path copies nothing in Python. Compressed tensors are decompressed
straight into a fresh tensor. Every buffer has already been sized against its header (frames.py).
"""

from collections.abc import Sequence

import numpy as np
import torch

from harness.wire.compression import Compression, CorruptBuffer, decompress_into
from harness.wire.frames import ITEMSIZE, FrameError, ScalarSpec, TensorSpec

_SCALAR_TYPES = {bool: "bool", int: "int", float: "float"}
_NUMPY_NAMES = {
    name: np.dtype(name)
    for name in ("float32", "float16", "float64", "uint8", "int8", "int16", "int32", "int64", "bool")
}
_NUMPY_DTYPES = {getattr(torch, name) for name in _NUMPY_NAMES}


def pack(values: Sequence, names: Sequence[str], compression: Compression) -> tuple[tuple, list, int]:
    """Header specs, buffers and the raw tensor bytes for ``values`` (CPU tensors and Python numbers)."""
    specs, buffers, raw = [], [], 0
    for name, value in zip(names, values, strict=True):
        if isinstance(value, torch.Tensor):
            tensor = value.detach()
            data = _bytes_of(tensor)
            buffer = compression.compress(data, tensor.element_size()) if compression.enabled else data
            dtype = str(tensor.dtype).removeprefix("torch.")
            specs.append(
                TensorSpec(
                    name=name,
                    dtype=dtype,
                    shape=tuple(tensor.shape),
                    codec=compression.codec,
                    nbytes=data.nbytes,
                    wire=len(buffer) if compression.enabled else data.nbytes,
                )
            )
            buffers.append(buffer)
            raw += data.nbytes
        elif type(value) in _SCALAR_TYPES:
            specs.append(ScalarSpec(name=name, dtype=_SCALAR_TYPES[type(value)], value=value))
        else:
            raise TypeError(f"value '{name}' of type {type(value).__name__} cannot be sent")
    return tuple(specs), buffers, raw


def unpack(specs: Sequence, buffers: Sequence, request_id: int = 0) -> list:
    """The values of a checked message: tensors (CPU) and Python numbers, in header order."""
    values = []
    tensors = iter(buffers)
    for spec in specs:
        if spec.kind == "scalar":
            values.append(_scalar(spec, request_id))
        else:
            values.append(_tensor(spec, next(tensors), request_id))
    return values


def _bytes_of(tensor: torch.Tensor) -> np.ndarray:
    """A flat uint8 view of a tensor's memory (a contiguous copy first if it is not contiguous).

    numpy does the viewing where it knows the dtype: one torch call instead of four, which matters
    on the hot path of every message.
    """
    if tensor.dtype in _NUMPY_DTYPES and tensor.is_contiguous():
        return tensor.numpy().reshape(-1).view(np.uint8)
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy()


def _tensor(spec: TensorSpec, buffer, request_id: int) -> torch.Tensor:
    dtype = getattr(torch, spec.dtype)
    if spec.nbytes == 0:
        return torch.empty(spec.shape, dtype=dtype)
    if spec.codec == "none":
        data = memoryview(getattr(buffer, "buffer", buffer))
        flat = (
            torch.frombuffer(data, dtype=torch.uint8)
            if not data.readonly
            else torch.tensor(np.frombuffer(data, np.uint8))
        )
        if flat.data_ptr() % ITEMSIZE[spec.dtype]:
            flat = flat.clone()
    else:
        flat = torch.empty(spec.nbytes, dtype=torch.uint8)
        try:
            decompress_into(getattr(buffer, "buffer", buffer), flat.numpy())
        except CorruptBuffer as error:
            raise FrameError("bad-frame", f"tensor '{spec.name}': {error}", request_id) from None
    if spec.dtype == "bool" and bool((flat > 1).any()):
        raise FrameError("bad-frame", f"tensor '{spec.name}': bool values other than 0 and 1", request_id)
    return flat.view(dtype).reshape(spec.shape)


def _scalar(spec: ScalarSpec, request_id: int):
    if _SCALAR_TYPES.get(type(spec.value)) != spec.dtype:
        raise FrameError(
            "bad-frame", f"scalar '{spec.name}': value {spec.value!r} is not of dtype {spec.dtype}", request_id
        )
    return spec.value
