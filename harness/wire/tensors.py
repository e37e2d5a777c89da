"""Values live across a cut, to and from frame headers and buffers.

Sending, an uncompressed tensor's buffer is its own memory (a flat byte view, so every dtype works,
bfloat16 included); receiving, a tensor is a view of the received frame where its alignment
allows, so the uncompressed path copies nothing in Python. Compressed tensors are decompressed
straight into a fresh tensor. Every buffer has already been sized against its header (frames.py).

A tensor the sender's cut codec encoded travels as its payload and is received as ``Coded``, left
for ``decode_values``: the receiver times undoing the codec apart from reading the frame.
"""

import math
from collections.abc import Callable, Sequence

import msgspec
import numpy as np
import torch

from harness.wire.codecs import Coded, UserPair, decode
from harness.wire.compression import Compression, CorruptBuffer, decompress_into
from harness.wire.frames import DTYPES, ITEMSIZE, CutSpec, FrameError, ScalarSpec, TensorSpec

_SCALAR_TYPES = {bool: "bool", int: "int", float: "float"}
_TORCH_DTYPES = {name: getattr(torch, name) for name in DTYPES}
_NUMPY_DTYPES = {name: np.dtype(name) for name in DTYPES if name != "bfloat16"}
_DTYPE_NAMES = {dtype: name for name, dtype in _TORCH_DTYPES.items()}


def pack(values: Sequence, names: Sequence[str], compression: Compression) -> tuple[tuple, list, int]:
    """Header specs, buffers and the raw tensor bytes for ``values`` (CPU tensors, ``Coded`` tensors
    and Python numbers); the raw bytes of a coded tensor are the tensor's, before its codec."""
    specs, buffers, raw = [], [], 0
    compressed = compression.enabled
    for name, value in zip(names, values, strict=True):
        if isinstance(value, torch.Tensor | Coded):
            if isinstance(value, Coded):
                dtype, data, typesize, cut = value.dtype, value.payload.numpy(), value.typesize, CutSpec(**value.header)
            else:
                dtype, data, typesize, cut = dtype_name(value, name), _bytes_of(value), value.element_size(), None
            buffer = compression.compress(data, typesize) if compressed else data
            wire = len(buffer) if compressed else data.nbytes
            shape = tuple(value.shape)
            specs.append(
                TensorSpec(
                    name=name,
                    dtype=dtype,
                    shape=shape,
                    codec=compression.codec,
                    nbytes=data.nbytes,
                    wire=wire,
                    cut=cut,
                )
            )
            buffers.append(buffer)
            raw += math.prod(shape) * ITEMSIZE[dtype]
        elif type(value) in _SCALAR_TYPES:
            specs.append(ScalarSpec(name=name, dtype=_SCALAR_TYPES[type(value)], value=value))
        else:
            raise TypeError(f"value '{name}' of type {type(value).__name__} cannot be sent")
    return tuple(specs), buffers, raw


def dtype_name(tensor: torch.Tensor, name: str) -> str:
    """The wire's name of a tensor's dtype; a dtype the wire does not carry is refused, by name."""
    dtype = _DTYPE_NAMES.get(tensor.dtype)
    if dtype is None:
        raise TypeError(
            f"tensor '{name}' of dtype {str(tensor.dtype).removeprefix('torch.')} cannot be sent "
            f"(expected one of {', '.join(DTYPES)})"
        )
    return dtype


def decode_values(values: list, request_id: int = 0, resolve: Callable[[str], UserPair] | None = None) -> list:
    """``values`` with every ``Coded`` tensor decoded; ``resolve`` finds a user codec (the receiver's
    policy on what it imports). A payload that does not decode is a bad frame, named."""
    decoded = []
    for value in values:
        if isinstance(value, Coded):
            try:
                value = decode(value, resolve)
            except (ValueError, RuntimeError) as error:
                raise FrameError("bad-frame", f"codec {value.header['codec']}: {error}", request_id) from None
        decoded.append(value)
    return decoded


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


def _tensor(spec: TensorSpec, buffer, request_id: int) -> torch.Tensor | Coded:
    if spec.cut is not None:
        payload = _received(spec, buffer, "uint8", (spec.nbytes,), request_id)
        return Coded(payload, spec.dtype, tuple(spec.shape), msgspec.structs.asdict(spec.cut))
    dtype = _TORCH_DTYPES[spec.dtype]
    if spec.nbytes == 0:
        return torch.empty(spec.shape, dtype=dtype)
    tensor = _received(spec, buffer, spec.dtype, spec.shape, request_id)
    if dtype is torch.bool and bool((tensor.view(torch.uint8) > 1).any()):
        raise FrameError("bad-frame", f"tensor '{spec.name}': bool values other than 0 and 1", request_id)
    return tensor


def _received(spec: TensorSpec, buffer, dtype: str, shape: tuple, request_id: int) -> torch.Tensor:
    """The buffer's ``nbytes`` as a tensor of ``dtype`` and ``shape``: a view, or decompressed."""
    if spec.codec == "none":
        return _view(buffer, dtype, shape)
    tensor = torch.empty(shape, dtype=_TORCH_DTYPES[dtype])
    try:
        decompress_into(getattr(buffer, "buffer", buffer), tensor.reshape(-1).view(torch.uint8).numpy())
    except CorruptBuffer as error:
        raise FrameError("bad-frame", f"tensor '{spec.name}': {error}", request_id) from None
    return tensor


def _view(buffer, dtype: str, shape: tuple) -> torch.Tensor:
    """The frame's memory as a tensor of ``dtype`` and ``shape``; a copy only where the memory is
    read-only (bytes) or not aligned to the element size (a frame may start anywhere in libzmq's
    buffer). numpy builds the view where it knows the dtype: on the hot path of every message its
    two calls cost half of torch's."""
    data = memoryview(getattr(buffer, "buffer", buffer))
    if data.readonly:
        data = bytearray(data)
    numpy_dtype = _NUMPY_DTYPES.get(dtype)
    if numpy_dtype is None:
        tensor = torch.frombuffer(data, dtype=_TORCH_DTYPES[dtype]).reshape(shape)
    else:
        tensor = torch.from_numpy(np.frombuffer(data, numpy_dtype).reshape(shape))
    return tensor.clone() if tensor.data_ptr() % tensor.element_size() else tensor


def _scalar(spec: ScalarSpec, request_id: int):
    if _SCALAR_TYPES.get(type(spec.value)) != spec.dtype:
        raise FrameError(
            "bad-frame", f"scalar '{spec.name}': value {spec.value!r} is not of dtype {spec.dtype}", request_id
        )
    return spec.value
