"""Whether an answer that ran partly on a worker agrees with the whole model run on the edge.

On a CPU the split is exact: every segment computes what the whole model computes, to the bit. A
worker on a GPU cannot: cuDNN sums a convolution in another order and, by PyTorch's default, in TF32
(10 bits of mantissa), about 1e-3 of relative error on its own. There an answer agrees within
``GPU_TOLERANCE``; a missing, stale or misplaced weight is off by far more.
"""

import torch
from torch.utils import _pytree as pytree

GPU_TOLERANCE = 1e-2
"""The largest relative error (the difference's norm over the expected answer's) that still agrees
where a worker computes off the CPU."""


def agrees(produced, expected, worker_device: str = "cpu") -> bool:
    """``produced`` equals ``expected`` (any nesting of tensors and plain values): exactly where the
    worker computes on the CPU, each tensor within ``GPU_TOLERANCE`` elsewhere."""
    left, right = pytree.tree_leaves(produced), pytree.tree_leaves(expected)
    if len(left) != len(right):
        return False
    exact = worker_device == "cpu"
    return all(
        _tensor_agrees(a, b, exact) if isinstance(a, torch.Tensor) else a == b for a, b in zip(left, right, strict=True)
    )


def relative_error(produced: torch.Tensor, expected: torch.Tensor) -> float:
    return float((produced.double() - expected.double()).norm() / expected.double().norm())


def _tensor_agrees(produced, expected, exact: bool) -> bool:
    if not isinstance(expected, torch.Tensor) or produced.shape != expected.shape or produced.dtype != expected.dtype:
        return False
    if exact or not produced.is_floating_point():
        return torch.equal(produced, expected)
    return relative_error(produced, expected) <= GPU_TOLERANCE
