"""Checking that every cut is exact: tail(head(x)) equals the unsplit model's output.

The reference is the original module, not the traced graph, so a trace that silently baked in a
branch shows up here. Tolerance is relative to the output's scale (its largest magnitude), because
logits of an untrained network and a backbone's feature maps differ by orders of magnitude.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.utils import _pytree as pytree

from harness.model.graph import Cut, SplitGraph

DEFAULT_TOLERANCE = 1e-5


@dataclass(frozen=True)
class CutCheck:
    """The outcome at one cut: the largest difference against the reference, and the bound used."""

    cut: int
    max_abs_diff: float
    bound: float
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and self.max_abs_diff <= self.bound


@dataclass
class VerifyReport:
    """``input_independent``: two different inputs gave the same output, so matching it proves little
    (an untrained model whose output is all zeros matches at every cut, whatever the cut sends)."""

    model: str
    granularity: str
    checks: list[CutCheck] = field(default_factory=list)
    input_independent: bool = False

    @property
    def failures(self) -> list[CutCheck]:
        return [check for check in self.checks if not check.passed]


def _difference(reference, result) -> tuple[float, float]:
    """Largest absolute difference over all output tensors, and the reference's largest magnitude."""
    expected = [leaf for leaf in pytree.tree_leaves(reference) if isinstance(leaf, torch.Tensor)]
    actual = [leaf for leaf in pytree.tree_leaves(result) if isinstance(leaf, torch.Tensor)]
    if len(expected) != len(actual) or any(e.shape != a.shape for e, a in zip(expected, actual, strict=True)):
        return float("inf"), 0.0
    pairs = [(e, a) for e, a in zip(expected, actual, strict=True) if e.numel()]
    diff = max((float((e.double() - a.double()).abs().max()) for e, a in pairs), default=0.0)
    scale = max((float(e.abs().max()) for e in expected if e.numel()), default=0.0)
    return diff, scale


def verify(
    split: SplitGraph,
    model: torch.nn.Module,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    on_cut: Callable[[Cut, CutCheck], None] | None = None,
) -> VerifyReport:
    """Run head then tail at every cut of ``split`` on one random input and compare with ``model``."""
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(split.input_shape, generator=generator)
    other = torch.randn(split.input_shape, generator=generator)
    report = VerifyReport(split.name, str(split.granularity))
    with torch.no_grad():
        reference = model(example.clone())
        report.input_independent = _difference(reference, model(other))[0] == 0
        for cut in split.cuts:
            try:
                live = split.head(cut.index)(example.clone())
                result = split.tail(cut.index)(*live)
                diff, scale = _difference(reference, result)
                check = CutCheck(cut.index, diff, tolerance * (scale or 1.0))
            except Exception as error:  # a broken segment is a failed check, reported with the others
                check = CutCheck(cut.index, float("inf"), 0.0, f"{type(error).__name__}: {error}")
            report.checks.append(check)
            if on_cut is not None:
                on_cut(cut, check)
    return report
