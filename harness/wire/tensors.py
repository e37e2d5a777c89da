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
from harness.wire.frames import DTYPES, FrameError, ScalarSpec, TensorSpec

_SCALAR_TYPES = {bool: "bool", int: "int", float: "float"}
_TORCH_DTYPES = {name: getattr(torch, name) for name in DTYPES}
_NUMPY_DTYPES = {name: np.dtype(name) for name in DTYPES if name != "bfloat16"}
_DTYPE_NAMES = {dtype: name for name, dtype in _TORCH_DTYPES.items()}


def pack(values: Sequence, names: Sequence[str], compression: Compression) -> tuple[tuple, list, int]:
    """Header specs, buffers and the raw tensor bytes for ``values`` (CPU tensors and Python numbers)."""
    specs, buffers, raw = [], [], 0
    compressed = compression.enabled
    for name, value in zip(names, values, strict=True):
        if isinstance(value, torch.Tensor):
            dtype = _DTYPE_NAMES.get(value.dtype)
            if dtype is None:
                raise TypeError(
                    f"tensor '{name}' of dtype {str(value.dtype).removeprefix('torch.')} cannot be sent "
                    f"(expected one of {', '.join(DTYPES)})"
                )
            data = _bytes_of(value)
            buffer = compression.compress(data, value.element_size()) if compressed else data
            wire = len(buffer) if compressed else data.nbytes
            specs.append(
                TensorSpec(
                    name=name,
                    dtype=dtype,
                    shape=tuple(value.shape),
                    codec=compression.codec,
                    nbytes=data.nbytes,
                    wire=wire,
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
        if isinstance(spec, ScalarSpec):
            values.append(_scalar(spec, request_id))
        else:
            values.append(_tensor(spec, next(tensors), request_id))
    return values


def _bytes_of(tensor: torch.Tensor) -> np.ndarray:
    """A flat uint8 view of a tensor's memory (a contiguous copy first if it is not contiguous).

    numpy does the viewing where it knows the dtype: one torch call instead of four, which matters
    on the hot path of every message.
    """
    if tensor.requires_grad:
        tensor = tensor.detach()
    if tensor.dtype is not torch.bfloat16 and tensor.is_contiguous():
        return tensor.numpy().reshape(-1).view(np.uint8)
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy()


def _tensor(spec: TensorSpec, buffer, request_id: int) -> torch.Tensor:
    dtype = _TORCH_DTYPES[spec.dtype]
    if spec.nbytes == 0:
        return torch.empty(spec.shape, dtype=dtype)
    if spec.codec == "none":
        tensor = _view(buffer, spec)
    else:
        tensor = torch.empty(spec.shape, dtype=dtype)
        try:
            decompress_into(getattr(buffer, "buffer", buffer), tensor.reshape(-1).view(torch.uint8).numpy())
        except CorruptBuffer as error:
            raise FrameError("bad-frame", f"tensor '{spec.name}': {error}", request_id) from None
    if dtype is torch.bool and bool((tensor.view(torch.uint8) > 1).any()):
        raise FrameError("bad-frame", f"tensor '{spec.name}': bool values other than 0 and 1", request_id)
    return tensor


def _view(buffer, spec: TensorSpec) -> torch.Tensor:
    """The frame's memory as a tensor of the spec's dtype and shape; a copy only where the memory is
    read-only (bytes) or not aligned to the element size (a frame may start anywhere in libzmq's
    buffer). numpy builds the view where it knows the dtype: on the hot path of every message its
    two calls cost half of torch's."""
    data = memoryview(getattr(buffer, "buffer", buffer))
    if data.readonly:
        data = bytearray(data)
    numpy_dtype = _NUMPY_DTYPES.get(spec.dtype)
    if numpy_dtype is None:
        tensor = torch.frombuffer(data, dtype=_TORCH_DTYPES[spec.dtype]).reshape(spec.shape)
    else:
        tensor = torch.from_numpy(np.frombuffer(data, numpy_dtype).reshape(spec.shape))
    return tensor.clone() if tensor.data_ptr() % tensor.element_size() else tensor


def _scalar(spec: ScalarSpec, request_id: int):
    if _SCALAR_TYPES.get(type(spec.value)) != spec.dtype:
        raise FrameError(
            "bad-frame", f"scalar '{spec.name}': value {spec.value!r} is not of dtype {spec.dtype}", request_id
        )
    return spec.value
