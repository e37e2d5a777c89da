"""Grouping graph nodes into the layers a cut may fall between, at three granularities.

``node``: every node that produces a value. ``module``: each call of a library layer (a leaf module)
and each operation written directly in the model's own forward, which numbers AlexNet's cuts as the
seed papers do. ``block``: each top-level child of the model. fx graphs mark layer calls as
``call_module`` nodes; export graphs are aten-level, so layers are recovered from each node's
module stack.
"""

import enum
from dataclasses import dataclass

from torch import fx, nn

from harness.errors import BadInput
from harness.model.analysis import COMPUTE_OPS, GraphFacts


class Granularity(enum.StrEnum):
    NODE = "node"
    MODULE = "module"
    BLOCK = "block"

    @classmethod
    def parse(cls, text: str) -> "Granularity":
        try:
            return cls(text)
        except ValueError:
            choices = ", ".join(member.value for member in cls)
            raise BadInput(f"granularity '{text}': expected one of {choices}") from None


@dataclass(frozen=True)
class Layer:
    """A run of graph nodes executed together; a cut falls after its last node."""

    name: str
    op: str
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class _Scope:
    key: str
    path: str
    type_name: str


def _scopes(node: fx.Node) -> list[_Scope]:
    """The modules a node ran inside, outermost first, without the root."""
    scopes = []
    for key, (path, module_type) in (node.meta.get("nn_module_stack") or {}).items():
        if path:
            type_name = module_type.__name__ if isinstance(module_type, type) else str(module_type).rsplit(".", 1)[-1]
            scopes.append(_Scope(key, path, type_name))
    return scopes


def _op_name(node: fx.Node, root: nn.Module) -> str:
    if node.op == "call_module":
        return type(root.get_submodule(node.target)).__name__
    if node.op == "call_method":
        return str(node.target)
    name = getattr(node.target, "__name__", str(node.target))
    return name.split(".")[0] if node.target.__class__.__name__ == "OpOverload" else name


def _own_label(node: fx.Node, root: nn.Module) -> tuple[str, str]:
    name = str(node.target) if node.op == "call_module" else node.name
    return name, _op_name(node, root)


def _has_children(root: nn.Module, path: str) -> bool:
    try:
        return any(True for _ in root.get_submodule(path).children())
    except AttributeError:
        return False


def _boundary(node, following, granularity, model: nn.Module, graph_root: nn.Module) -> tuple[str, str] | None:
    """The layer label if a layer ends after ``node``, else None."""
    scopes = _scopes(node)
    next_scopes = _scopes(following) if following is not None else []
    if granularity is Granularity.NODE or (node.op == "call_module" and granularity is Granularity.MODULE):
        return _own_label(node, graph_root)
    if not scopes:
        return _own_label(node, graph_root)
    if granularity is Granularity.MODULE:
        innermost = scopes[-1]
        if _has_children(model, innermost.path):
            return None
        if next_scopes and next_scopes[-1].key == innermost.key:
            return None
        return innermost.path, innermost.type_name
    top = scopes[0]
    if next_scopes and next_scopes[0].key == top.key:
        return None
    return top.path, top.type_name


def group_layers(
    graph_module: fx.GraphModule, model: nn.Module, facts: GraphFacts, granularity: Granularity
) -> list[Layer]:
    """The layers of ``graph_module`` in execution order.

    Nodes that produce nothing (asserts) never end a layer; they join the layer after them, or the
    last layer when they come at the end.
    """
    compute = [node for node in graph_module.graph.nodes if node.op in COMPUTE_OPS]
    layers: list[Layer] = []
    pending: list[str] = []
    for position, node in enumerate(compute):
        pending.append(node.name)
        if facts.nodes[node.name].leaves == ():
            continue
        following = compute[position + 1] if position + 1 < len(compute) else None
        label = _boundary(node, following, granularity, model, graph_module)
        if label is not None:
            layers.append(Layer(label[0], label[1], tuple(pending)))
            pending = []
    if pending and layers:
        last = layers[-1]
        layers[-1] = Layer(last.name, last.op, last.nodes + tuple(pending))
    elif pending:
        layers.append(Layer(pending[-1], "graph", tuple(pending)))
    return layers
