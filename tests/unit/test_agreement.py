"""When a query's answer agrees with the whole model's: to the bit where the worker computes on a CPU,
within ``GPU_TOLERANCE`` on a GPU, and never where a weight is wrong or the structure differs."""

import pytest
import torch

from harness.worker.agreement import GPU_TOLERANCE, agrees, relative_error


def _off_by(expected: torch.Tensor, relative: float) -> torch.Tensor:
    """``expected`` plus noise whose norm is ``relative`` of its own."""
    noise = torch.randn(expected.shape, generator=torch.Generator().manual_seed(1))
    return expected + noise * (relative * expected.norm() / noise.norm())


def test_a_cpu_worker_agrees_only_to_the_bit_and_a_gpu_within_its_tolerance():
    expected = torch.randn(1, 1000, generator=torch.Generator().manual_seed(0))
    tf32_like = _off_by(expected, 1e-3)
    assert relative_error(tf32_like, expected) == pytest.approx(1e-3, rel=1e-4), "float32 rounds the noise"
    assert agrees(expected.clone(), expected) and agrees(expected.clone(), expected, "cuda")
    assert not agrees(tf32_like, expected), "a CPU worker's split is exact"
    assert agrees(tf32_like, expected, "cuda")
    assert agrees(_off_by(expected, GPU_TOLERANCE * 0.99), expected, "cuda:1")
    assert not agrees(_off_by(expected, GPU_TOLERANCE * 1.01), expected, "cuda")
    wrong_weight = expected.clone()
    wrong_weight[0, :100] = 0
    assert not agrees(wrong_weight, expected, "cuda"), "a tenth of the logits lost is far off"


def test_structure_shape_dtype_and_integers_are_never_approximate():
    logits, labels = torch.randn(2, 10), torch.tensor([3, 7])
    assert agrees((logits, labels), (logits.clone(), labels.clone()), "cuda")
    assert not agrees((logits, labels + 1), (logits, labels), "cuda"), "integers agree exactly"
    assert not agrees((logits,), (logits, labels), "cuda")
    assert not agrees(logits.reshape(20), logits, "cuda")
    assert not agrees(logits.double(), logits, "cuda")
    assert agrees({"out": logits, "n": 2}, {"out": logits.clone(), "n": 2}) and not agrees({"n": 3}, {"n": 2})
