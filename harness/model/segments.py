"""Carving a traced graph into segments: head (edge) and tail (cloud) of one cut, or the consecutive
segments between several cuts, one for each host of a pipeline.

Each segment is an fx GraphModule over the same parameters holding only the nodes on its side, so
no host re-runs another's layers. A segment returns every value live across the cut that ends it,
each once; the next segment takes them as inputs. Values that are tuples or dicts (YOLO's detect output, a backbone's
feature maps) are flattened to tensors and scalars for the wire and rebuilt on the other side.
Parameters read through ``get_attr`` are copied into whichever side reads them; they never cross.

Called layers sit directly on the segment under flat names (``features_1_conv_0_0``): fx's code for
a nested target walks ``nn.Module.__getattr__`` once per level on every call, which cost
mobilenet_v2 about 4% of its forward.
"""

from collections.abc import Iterable

import torch
from torch import fx, nn
from torch.utils import _pytree as pytree

from harness.model.analysis import attribute


class Segment(nn.Module):
    """The layers between two cuts: the flat tuple of tensors and scalars live at the first cut in
    (rebuilt into its values by ``live_spec``; the model's own inputs for the first segment), and
    the values live at the second cut out, flattened again where ``flatten`` (the model's output
    for the last segment)."""

    def __init__(self, graph_module: fx.GraphModule, live_spec: pytree.TreeSpec | None, flatten: bool):
        super().__init__()
        self.graph_module = graph_module
        self.live_spec = live_spec
        self.flatten = flatten

    def forward(self, *leaves):
        values = pytree.tree_unflatten(list(leaves), self.live_spec) if self.live_spec is not None else leaves
        live = self.graph_module(*values)
        return tuple(pytree.tree_leaves(live)) if self.flatten else live


Head = Segment
"""The edge segment of one cut: the model's inputs in, the live values out."""

Tail = Segment
"""The cloud segment of one cut: the live values in, the model's output out."""


def carve(
    source: fx.GraphModule,
    inputs: Iterable[fx.Node],
    body: set[fx.Node],
    outputs,
    copy_inputs: bool,
) -> fx.GraphModule:
    """A graph module computing ``outputs`` from ``inputs`` with the nodes of ``body``.

    ``copy_inputs`` keeps the source placeholders as they are (defaults included); otherwise each
    input node becomes a fresh placeholder of the same name.
    """
    graph = fx.Graph()
    owner: dict[str, object] = {}
    env: dict[fx.Node, fx.Node] = {}
    for node in inputs:
        env[node] = graph.node_copy(node) if copy_inputs else graph.placeholder(node.name)

    def lookup(node: fx.Node) -> fx.Node:
        if node not in env and node.op == "get_attr":
            env[node] = graph.node_copy(node)
            owner[node.target] = attribute(source, node.target)
        return env[node]

    for node in source.graph.nodes:
        if node in body:
            copy = graph.node_copy(node, lookup)
            if node.op == "call_module":
                layer = source.get_submodule(node.target)
                copy.target = _flat_name(str(node.target), layer, owner)
                owner[copy.target] = layer
            env[node] = copy
    graph.output(fx.map_arg(outputs, lookup))
    graph.lint()
    return fx.GraphModule(owner, graph, source.__class__.__name__)


def _flat_name(target: str, layer: nn.Module, taken: dict[str, object]) -> str:
    """``target`` with dots as underscores; a layer called twice keeps one name."""
    name = "layer_" + target.replace(".", "_")
    return name if taken.get(name, layer) is layer else f"{name}_{len(taken)}"


def live_structure(specs: list[pytree.TreeSpec]) -> pytree.TreeSpec | None:
    """The structure of the tuple of live values, or None when each value is already one leaf."""
    if all(spec.is_leaf() for spec in specs):
        return None
    placeholders = [pytree.tree_unflatten([torch.empty(0)] * spec.num_leaves, spec) for spec in specs]
    return pytree.tree_structure(tuple(placeholders))
