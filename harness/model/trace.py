"""Turning a model into a graph we can cut: torch.fx first, torch.export where fx fails.

fx keeps library layers as ``call_module`` nodes, which is what per-layer cuts and hooks want.
Arguments of ``forward`` left at their defaults (``attn_mask=None``) are constants of the trace,
as they are of every call the harness makes: left as graph inputs they would be live, unsendable
values at every cut up to their last use, and those cuts would be withheld.
torch.export handles Python control flow on shapes that fx cannot, at the price of aten-level nodes
(layers are then recovered from each node's module stack). If both fail, the error names the line
of model code each tracer stopped at.
"""

import contextlib
import inspect
import io
import logging
import operator
import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import fx, nn

from harness.errors import BadInput
from harness.model.sources import LoadedModel

_TORCH_DIR = os.path.dirname(torch.__file__)


@dataclass
class TracedModel:
    """A graph module equivalent to the model, and which tracer produced it (``fx`` or ``export``)."""

    graph_module: fx.GraphModule
    tracer: str


class _BlockTracer(fx.Tracer):
    """An fx tracer that can keep the model's top-level children opaque."""

    def __init__(self, blocks_are_leaves: bool):
        super().__init__()
        self.blocks_are_leaves = blocks_are_leaves

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        if self.blocks_are_leaves and qualified_name and "." not in qualified_name:
            return True
        return super().is_leaf_module(module, qualified_name)


def trace(loaded: LoadedModel, example: tuple[torch.Tensor, ...]) -> TracedModel:
    """Trace ``loaded`` with fx, or with torch.export on ``example`` if fx fails."""
    try:
        tracer = _BlockTracer(loaded.blocks_are_leaves)
        defaults = _defaults(loaded.module, passed=len(example))
        graph = tracer.trace(loaded.module, concrete_args=defaults or None)
        _drop_specialised_inputs(graph)
        return TracedModel(fx.GraphModule(tracer.root, graph, loaded.module.__class__.__name__), "fx")
    except Exception as fx_error:
        fx_failure = describe_failure(fx_error)
    try:
        with torch.no_grad(), _quiet_torch_logs():
            program = torch.export.export(loaded.module, example, strict=False)
    except Exception as export_error:
        raise BadInput(
            f"cannot trace model '{loaded.name}': torch.fx failed {fx_failure}; "
            f"torch.export failed {describe_failure(export_error)}"
        ) from export_error
    graph_module = program.module()
    _drop_input_guards(graph_module)
    return TracedModel(graph_module, "export")


def _defaults(module: nn.Module, passed: int) -> dict[str, object]:
    """The arguments of ``module.forward`` left at their defaults, with their values: all that have
    one but the first ``passed``, which the harness gives (``forward(self, input_ids=None, ...)``)."""
    try:
        parameters = list(inspect.signature(module.forward).parameters.values())[passed:]
    except (TypeError, ValueError):
        return {}
    return {
        parameter.name: parameter.default
        for parameter in parameters
        if parameter.default is not inspect.Parameter.empty
        and parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


_SPECIALISATION_CHECKS = {operator.eq, torch._assert, fx._symbolic_trace._assert_is_none}


def _drop_specialised_inputs(graph: fx.Graph) -> None:
    """Remove the inputs that fx made constants, with the checks it adds that each keeps its value:
    the segments are called with the remaining inputs only."""
    for placeholder in [node for node in graph.nodes if node.op == "placeholder" and node.args]:
        checks = _checks_of(placeholder)
        if checks is None:
            continue
        for node in reversed(checks):
            graph.erase_node(node)
        graph.erase_node(placeholder)


def _checks_of(placeholder: fx.Node) -> list[fx.Node] | None:
    """The nodes that only check ``placeholder``'s value, in graph order; None if anything else reads it."""
    found: list[fx.Node] = []
    pending = list(placeholder.users)
    while pending:
        node = pending.pop()
        if node in found:
            continue
        if node.op != "call_function" or node.target not in _SPECIALISATION_CHECKS:
            return None
        found.append(node)
        pending += list(node.users)
    order = {node: position for position, node in enumerate(placeholder.graph.nodes)}
    return sorted(found, key=order.__getitem__)


@contextlib.contextmanager
def _quiet_torch_logs() -> Iterator[None]:
    """Keep torch.export's warnings and graph dumps off the terminal; its error says what failed.

    Some of that output is logged and some printed, so both logging and Python's streams are muted.
    """
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def describe_failure(error: BaseException) -> str:
    """``at FILE:LINE (`code`): first line of the message``, the frame being the model's own code."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if not frame.filename.startswith(_TORCH_DIR)]
    if not frames:
        return f"({type(error).__name__}: {message})"
    frame = frames[-1]
    return f"at {os.path.relpath(frame.filename)}:{frame.lineno} (`{frame.line}`): {message}"


def _drop_input_guards(graph_module: fx.GraphModule) -> None:
    """Remove export's input-shape guard call: each segment has its own inputs, checked by use."""
    for node in list(graph_module.graph.nodes):
        if node.op == "call_module" and str(node.target).startswith("_guards"):
            graph_module.graph.erase_node(node)
    graph_module.recompile()
