"""Example cut codecs, referenced from a manifest as ``codec: experiments.codecs:NAME``.

A codec is a function returning a pair ``(encode, decode)``: ``encode(tensor)`` gives the payload as
a flat uint8 tensor, ``decode(payload, dtype, shape)`` the tensor the tail receives. The edge runs
encode after the head, the worker decode before the tail, both timed; the worker imports codecs
from its user packages only.
"""

import torch


def scrambled():
    """A control, not a codec to use: the values cross in a fixed random order and are never put
    back, so the tail sees the right numbers in the wrong places. Accuracy falls to chance, which
    shows that a sweep measures accuracy rather than assuming it."""

    def encode(tensor: torch.Tensor) -> torch.Tensor:
        flat = tensor.detach().reshape(-1)
        order = torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(0), device="cpu")
        return flat.cpu()[order].contiguous().view(torch.uint8)

    def decode(payload: torch.Tensor, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
        return payload.clone().view(dtype).reshape(shape)

    return encode, decode


def float16_halves():
    """The built-in ``fp16``, written as a user codec: half the bytes, values within 1e-3."""

    def encode(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach().to(torch.float16).reshape(-1).cpu().view(torch.uint8)

    def decode(payload: torch.Tensor, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
        return payload.clone().view(torch.float16).reshape(shape).to(dtype)

    return encode, decode
