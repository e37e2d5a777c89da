"""Cut codecs: what the edge makes of a floating tensor at the cut so that fewer bytes cross the
link, and what the worker undoes before the tail.

Compression (blosc2) is lossless and works on any bytes; a cut codec is lossy and knows it holds
activations, so only accuracy measured on labelled data says what it costs. The two compose: the
codec's payload is what blosc2 then compresses. Integer and boolean tensors, and numbers, cross
unchanged; so does a tensor already of the codec's dtype (fp16 of a float16 tensor).

Payloads (flat bytes, before compression), and what the frame header says of them:

- ``fp16``, ``bf16``: the values cast, two bytes each.
- ``int8``: one unsigned byte per value, ``q = round(x / scale) + zero``; the range quantised
  always holds 0, so ReLU's zeros come back exact. ``scale`` and ``zero`` are in the header.
- ``int8-channel``, ``int4-channel``: the same per channel (axis 1 of a 4-D NCHW tensor, the last
  axis of any other; the header names it), 16 levels for int4 with two values per byte, the first
  in the low four bits. Each channel's scale and zero point lead the payload as float32 (all
  scales, then all zero points): the header says how many there are, and their bytes are counted
  where they travel; as JSON, a ResNet's 2,048 channels would take three times the bytes and a
  third of the header's limit.
- ``topk:F``: the ``ceil(F * n)`` values largest in magnitude, as int32 positions (ascending)
  then the values in the tensor's own dtype; every other value is 0. ``kept`` is in the header.
- ``package.module:function``: a user codec from experiments/; the function returns a pair
  ``(encode, decode)``: ``encode(tensor)`` gives the payload as a flat uint8 tensor and
  ``decode(payload, dtype, shape)`` the tensor back. The receiver checks what decode returns.

Every payload's size follows from the header (but a user codec's), and the frame checks it before
anything is decoded; a position outside the tensor is refused rather than written.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import torch

from harness.errors import BadInput

NAMES = ("none", "fp16", "bf16", "int8", "int8-channel", "int4-channel", "topk")
FLOATING = ("float32", "float64", "float16", "bfloat16")
CAST = {"fp16": (torch.float16, "float16"), "bf16": (torch.bfloat16, "bfloat16")}
LEVELS = {"int8": 255, "int8-channel": 255, "int4-channel": 15}
USER_PATTERN = r"[A-Za-z_][A-Za-z0-9_.]{0,200}:[A-Za-z_][A-Za-z0-9_]{0,100}"
WIRE_PATTERN = rf"^(fp16|bf16|int8|int8-channel|int4-channel|topk|{USER_PATTERN})$"
"""What a frame header may name: a built-in codec, or a user codec the receiver then polices."""
EXPECTED = (
    "none, fp16, bf16, int8, int8-channel, int4-channel, topk:FRACTION with FRACTION in (0, 1] "
    "or package.module:function"
)

UserPair = tuple[Callable, Callable]


@dataclass(frozen=True)
class Coded:
    """A tensor as its codec's payload: what ``pack`` frames and ``decode`` turns back into a tensor."""

    payload: torch.Tensor
    """Flat uint8 (CPU)."""
    dtype: str
    shape: tuple[int, ...]
    header: dict = field(default_factory=dict)
    """The header's codec fields: ``codec`` and, by codec, ``scale``, ``zero``, ``axis``, ``kept``."""
    typesize: int = 1
    """The payload's element size, for blosc2's shuffle."""


@dataclass(frozen=True)
class CutCodec:
    """A manifest's ``codec``: a built-in name (``fraction`` for top-k) or a user ``module:function``."""

    name: str = "none"
    fraction: float | None = None

    @classmethod
    def parse(cls, text: str) -> "CutCodec":
        text = text.strip()
        name, colon, rest = text.partition(":")
        if name.lower() == "topk":
            try:
                fraction = float(rest)
            except ValueError:
                raise BadInput(f"codec '{text}': expected topk:FRACTION with FRACTION in (0, 1]") from None
            if not 0 < fraction <= 1:
                raise BadInput(f"codec '{text}': the top-k fraction must be in (0, 1], like topk:0.1")
            return cls("topk", fraction)
        if colon:
            if not name or not rest.isidentifier() or not all(part.isidentifier() for part in name.split(".")):
                raise BadInput(f"codec '{text}': expected {EXPECTED}")
            return cls(text)
        if text.lower() not in NAMES:
            raise BadInput(f"codec '{text}': expected {EXPECTED}")
        return cls(text.lower())

    @property
    def enabled(self) -> bool:
        return self.name != "none"

    @property
    def user(self) -> bool:
        return ":" in self.name

    def __str__(self) -> str:
        return f"topk:{self.fraction:g}" if self.name == "topk" else self.name

    def payload_size(self, dtype: str, shape: tuple[int, ...], nbytes: int) -> int:
        """The bytes this codec sends for a tensor of ``dtype`` and ``shape`` (``nbytes`` as it is),
        before compression: what a partitioner charges a cut. A user codec is asked, on zeros."""
        elements = math.prod(shape)
        if not self.enabled or dtype not in FLOATING or not elements:
            return nbytes
        if self.name in CAST:
            return nbytes if dtype == CAST[self.name][1] else 2 * elements
        if self.user:
            return int(self.encode(torch.zeros(shape, dtype=getattr(torch, dtype)), dtype).payload.numel())
        kept = math.ceil(self.fraction * elements) if self.fraction else 0
        header = {"scale": 1.0, "zero": 0, "axis": channel_axis(tuple(shape)), "kept": max(1, kept)}
        return payload_bytes(self.name, dtype, tuple(shape), header)

    def encode(self, value, dtype: str):
        """``value`` as this codec's ``Coded`` payload, or unchanged where the codec leaves it be."""
        if not self.enabled or not isinstance(value, torch.Tensor) or dtype not in FLOATING or not value.numel():
            return value
        if self.name in CAST:
            target, target_name = CAST[self.name]
            if dtype == target_name:
                return value
            return _coded(value.to(target), dtype, value.shape, {"codec": self.name}, 2)
        if self.name in LEVELS:
            return _quantise(value, dtype, self.name)
        if self.name == "topk":
            return _top_k(value, dtype, self.fraction)
        encode, _ = user_pair(self.name)
        payload = encode(value)
        if not isinstance(payload, torch.Tensor) or payload.dtype is not torch.uint8:
            raise BadInput(f"codec '{self.name}': encode returned {type(payload).__name__}, expected a uint8 tensor")
        return Coded(payload.detach().cpu().contiguous().reshape(-1), dtype, tuple(value.shape), {"codec": self.name})


def payload_bytes(codec: str, dtype: str, shape: tuple[int, ...], header: dict) -> int | None:
    """The size of a payload by its header (None for a user codec, whose size only it knows);
    raises ValueError naming what does not fit."""
    if dtype not in FLOATING:
        raise ValueError(f"codec {codec} on a {dtype} tensor: codecs apply to {', '.join(FLOATING)} only")
    elements = math.prod(shape)
    if codec in CAST:
        return 2 * elements
    if codec == "int8":
        if header.get("scale") is None or header.get("zero") is None:
            raise ValueError("codec int8 needs scale and zero")
        return elements
    if codec in LEVELS:
        axis = header.get("axis")
        if axis is not None and axis >= len(shape):
            raise ValueError(f"codec {codec}: axis {axis} of a tensor of {len(shape)} dimensions")
        channels = 1 if axis is None else shape[axis]
        values = elements if codec == "int8-channel" else (elements + 1) // 2
        return 8 * channels + values
    if codec == "topk":
        kept = header.get("kept") or 0
        if not 1 <= kept <= max(elements, 1):
            raise ValueError(f"codec topk: kept {kept} of {elements} values")
        return kept * (4 + torch.empty((), dtype=getattr(torch, dtype)).element_size())
    return None


def decode(coded: Coded, resolve: Callable[[str], UserPair] | None = None) -> torch.Tensor:
    """The tensor a payload stands for, on the payload's device (a worker moves the payload, the
    smaller of the two, and decodes there); ``resolve`` finds a user codec's pair (the receiver's
    policy)."""
    codec = coded.header["codec"]
    dtype = getattr(torch, coded.dtype)
    payload = coded.payload
    if codec in CAST:
        return payload.view(CAST[codec][0]).reshape(coded.shape).to(dtype)
    if codec == "int8":
        scale, zero = coded.header["scale"], coded.header["zero"]
        scale = torch.tensor(scale, dtype=torch.float32, device=payload.device)
        return ((payload.to(torch.float32) - zero) * scale).reshape(coded.shape).to(dtype)
    if codec in LEVELS:
        return _dequantise(coded, dtype)
    if codec == "topk":
        kept = coded.header["kept"]
        positions = payload[: 4 * kept].clone().view(torch.int32).to(torch.int64)
        elements = math.prod(coded.shape)
        if kept and (int(positions.min()) < 0 or int(positions.max()) >= elements):
            raise ValueError(f"topk position outside the tensor's {elements} values")
        out = torch.zeros(elements, dtype=dtype, device=payload.device)
        out[positions] = payload[4 * kept :].clone().view(dtype)
        return out.reshape(coded.shape)
    _, user_decode = (resolve or user_pair)(codec)
    out = user_decode(payload, dtype, coded.shape)
    if not isinstance(out, torch.Tensor) or out.dtype is not dtype or tuple(out.shape) != tuple(coded.shape):
        got = f"{out.dtype} {list(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"codec {codec}: decode returned {got}, expected {coded.dtype} {list(coded.shape)}")
    return out


@cache
def user_pair(name: str) -> UserPair:
    """A user codec's ``(encode, decode)``, from its ``package.module:function``."""
    from harness.model.user_code import user_function

    pair = user_function("codec", name)()
    if not (isinstance(pair, tuple) and len(pair) == 2 and all(callable(part) for part in pair)):
        raise BadInput(f"codec '{name}': the function must return a pair (encode, decode)")
    return pair


def channel_axis(shape: tuple[int, ...]) -> int | None:
    """Where a tensor's channels are: axis 1 of NCHW, the features (last axis) of anything else;
    None for a number or a vector, which is one channel."""
    if len(shape) < 2:
        return None
    return 1 if len(shape) == 4 else len(shape) - 1


def _coded(payload: torch.Tensor, dtype: str, shape, header: dict, typesize: int) -> Coded:
    flat = payload.detach().contiguous().reshape(-1).view(torch.uint8)
    return Coded(flat, dtype, tuple(shape), header, typesize)


def _affine(values: torch.Tensor, levels: int, dims) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unsigned codes, scale and zero point over ``dims`` (all if None), the range holding 0."""
    if dims is None:
        low, high = values.min().clamp(max=0), values.max().clamp(min=0)
    else:
        low = values.amin(dim=dims, keepdim=True).clamp(max=0)
        high = values.amax(dim=dims, keepdim=True).clamp(min=0)
    scale = (high - low) / levels
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero = torch.round(-low / scale).clamp(0, levels)
    codes = (torch.round(values / scale) + zero).clamp(0, levels).to(torch.uint8)
    return codes, scale, zero


def _quantise(value: torch.Tensor, dtype: str, codec: str) -> Coded:
    values = value.detach().to(torch.float32)
    levels = LEVELS[codec]
    if codec == "int8":
        codes, scale, zero = _affine(values, levels, None)
        return _coded(codes, dtype, value.shape, {"codec": codec, "scale": float(scale), "zero": int(zero)}, 1)
    axis = channel_axis(tuple(value.shape))
    dims = None if axis is None else [dim for dim in range(values.dim()) if dim != axis]
    codes, scale, zero = _affine(values, levels, dims)
    codes = codes.reshape(-1)
    if codec == "int4-channel":
        if codes.numel() % 2:
            codes = torch.cat([codes, codes.new_zeros(1)])
        codes = codes[0::2] | (codes[1::2] << 4)
    side = torch.cat([scale.reshape(-1), zero.reshape(-1)]).to(torch.float32).view(torch.uint8)
    return Coded(torch.cat([side, codes]), dtype, tuple(value.shape), {"codec": codec, "axis": axis}, 1)


def _dequantise(coded: Coded, dtype: torch.dtype) -> torch.Tensor:
    axis = coded.header.get("axis")
    channels = 1 if axis is None else coded.shape[axis]
    side = coded.payload[: 8 * channels].clone().view(torch.float32)
    codes = coded.payload[8 * channels :]
    elements = math.prod(coded.shape)
    if coded.header["codec"] == "int4-channel":
        codes = torch.stack([codes & 0x0F, codes >> 4], dim=1).reshape(-1)[:elements]
    broadcast = [1] * len(coded.shape)
    if axis is not None:
        broadcast[axis] = channels
    scale, zero = side[:channels].reshape(broadcast), side[channels:].reshape(broadcast)
    return ((codes.to(torch.float32).reshape(coded.shape) - zero) * scale).to(dtype)


def _top_k(value: torch.Tensor, dtype: str, fraction: float) -> Coded:
    flat = value.detach().reshape(-1)
    kept = max(1, math.ceil(fraction * flat.numel()))
    positions = torch.topk(flat.abs().to(torch.float32), kept, sorted=False).indices.sort().values
    payload = torch.cat([positions.to(torch.int32).view(torch.uint8), flat[positions].contiguous().view(torch.uint8)])
    return Coded(payload, dtype, tuple(value.shape), {"codec": "topk", "kept": kept}, 4)
