"""What each graph node produces, costs and holds, learned by running one example through the graph.

The cut table needs, for every node, the shapes and dtypes of its value (to price what crosses a
cut), its FLOPs (torch's own flop counter, so the numbers agree with the rest of the ecosystem) and
the parameters and buffers it reads (to say what each host must hold). Only metadata is kept, never
the example's activations.
"""

from dataclasses import dataclass

import torch
from torch import fx
from torch.utils import _pytree as pytree
from torch.utils.flop_counter import FlopCounterMode

from harness.errors import BadInput

COMPUTE_OPS = ("call_module", "call_function", "call_method")
_SCALAR_KINDS = {bool: "bool", int: "int", float: "float"}
SCALAR_BYTES = 8


@dataclass(frozen=True)
class ValueLeaf:
    """One tensor or Python scalar inside a value: in a node's facts ``name`` is its path inside the
    node's tuple or dict (empty for a plain tensor); at a cut it is the node's name plus that path."""

    name: str
    kind: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int


@dataclass(frozen=True)
class NodeFacts:
    """Metadata of one node's value and cost.

    ``leaves`` is None when the value holds something that cannot be sent between hosts (a string,
    a dtype, a device, None): no cut may leave such a value live. ``unsendable`` names its type then.
    """

    leaves: tuple[ValueLeaf, ...] | None
    spec: pytree.TreeSpec
    flops: int
    params: frozenset[str]
    unsendable: str = ""


def describe_value(value) -> tuple[tuple[ValueLeaf, ...] | None, pytree.TreeSpec, str]:
    """Flatten a node's value into sendable leaves and the structure that rebuilds it; or None and
    the type of the first leaf that cannot be sent."""
    keyed, spec = pytree.tree_flatten_with_path(value)
    leaves = []
    for key_path, leaf in keyed:
        path = pytree.keystr(key_path)
        if isinstance(leaf, torch.Tensor):
            dtype = str(leaf.dtype).removeprefix("torch.")
            leaves.append(ValueLeaf(path, "tensor", tuple(leaf.shape), dtype, leaf.numel() * leaf.element_size()))
        elif type(leaf) in _SCALAR_KINDS:
            kind = _SCALAR_KINDS[type(leaf)]
            leaves.append(ValueLeaf(path, kind, (), kind, SCALAR_BYTES))
        else:
            return None, spec, type(leaf).__name__
    return tuple(leaves), spec, ""


class _ParameterIndex:
    """Canonical names and sizes of the root's parameters and buffers, shared tensors counted once."""

    def __init__(self, root: torch.nn.Module):
        self.name_of: dict[int, str] = {}
        self.nbytes: dict[str, int] = {}
        for name, tensor in [*root.named_parameters(), *root.named_buffers()]:
            self.name_of[id(tensor)] = name
            self.nbytes[name] = tensor.numel() * tensor.element_size()

    def held_by(self, graph_module: fx.GraphModule, node: fx.Node) -> frozenset[str]:
        if node.op == "call_module":
            module = graph_module.get_submodule(node.target)
            tensors = [*module.parameters(), *module.buffers()]
        elif node.op == "get_attr":
            tensors = [attribute(graph_module, node.target)]
        else:
            return frozenset()
        names = set()
        for tensor in tensors:
            if not isinstance(tensor, torch.Tensor):
                continue
            name = self.name_of.get(id(tensor))
            if name is None:
                name = str(node.target)
                self.name_of[id(tensor)] = name
                self.nbytes[name] = tensor.numel() * tensor.element_size()
            names.add(name)
        return frozenset(names)


def attribute(module: torch.nn.Module, target: str):
    """The object a ``get_attr`` node reads: a parameter, buffer or constant tensor."""
    owner, _, name = target.rpartition(".")
    return getattr(module.get_submodule(owner) if owner else module, name)


class _Recorder(fx.Interpreter):
    def __init__(self, graph_module: fx.GraphModule, index: _ParameterIndex):
        super().__init__(graph_module)
        self.index = index
        self.facts: dict[str, NodeFacts] = {}

    def run_node(self, node: fx.Node):
        if node.op in COMPUTE_OPS:
            with FlopCounterMode(display=False) as counter:
                value = super().run_node(node)
            flops = int(counter.get_total_flops())
        else:
            value = super().run_node(node)
            flops = 0
        leaves, spec, unsendable = describe_value(value)
        self.facts[node.name] = NodeFacts(leaves, spec, flops, self.index.held_by(self.module, node), unsendable)
        return value


@dataclass
class GraphFacts:
    """Per-node facts, the parameter sizes they refer to, and the example's output."""

    nodes: dict[str, NodeFacts]
    param_bytes: dict[str, int]
    output: object

    def bytes_of(self, params: set[str] | frozenset[str]) -> int:
        return sum(self.param_bytes[name] for name in params)


def analyse(graph_module: fx.GraphModule, example: tuple[torch.Tensor, ...]) -> GraphFacts:
    """Run ``example`` through the graph once, recording every node's facts."""
    index = _ParameterIndex(graph_module)
    recorder = _Recorder(graph_module, index)
    try:
        with torch.no_grad():
            output = recorder.run(*example)
    except RuntimeError as error:
        raise BadInput(f"input shape does not fit the traced model: {_first_line(error)}") from error
    return GraphFacts(recorder.facts, index.nbytes, output)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
