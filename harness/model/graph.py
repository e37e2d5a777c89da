"""The split graph: a model's cut points, what crosses each, and its head and tail segments.

This is the object the rest of the harness builds on: the worker asks it for segments, the
partitioners for the cut table, the CLI prints it. A cut's index is its position among the layers
of the chosen granularity (cut 0 sends the input, the last keeps every layer on the edge), and stays
the same when cuts are filtered, so a manifest's ``cuts: [0, 3, 13]`` always means the same layers.
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import torch
from torch import fx
from torch.utils import _pytree as pytree

from harness.errors import BadInput
from harness.model.analysis import COMPUTE_OPS, GraphFacts, ValueLeaf, analyse, attribute
from harness.model.layers import Granularity, Layer, group_layers
from harness.model.segments import Head, Segment, Tail, carve, live_structure
from harness.model.sources import LoadedModel, weights_digest
from harness.model.trace import trace

Crossing = ValueLeaf
"""One tensor (or Python scalar) sent from edge to cloud at a cut."""


@dataclass(frozen=True)
class Cut:
    """A place to split the model, priced in bytes, parameters and FLOPs on each side.

    ``bytes`` counts tensor payload only; scalars (a batch size read from a shape) travel in the
    frame header. ``flops`` is the layer that ends at this cut; ``edge_flops`` and ``cloud_flops``
    are the totals on each side.
    """

    index: int
    after: str
    op: str
    live: tuple[Crossing, ...]
    bytes: int
    edge_param_bytes: int
    cloud_param_bytes: int
    flops: int
    edge_flops: int
    cloud_flops: int

    @property
    def single_tensor(self) -> bool:
        return len(self.live) == 1 and self.live[0].kind == "tensor"


@dataclass
class SplitGraph:
    """A traced model with its layers and cuts at one granularity."""

    name: str
    granularity: Granularity
    input_shape: tuple[int, ...]
    tracer: str
    graph_module: fx.GraphModule
    layers: list[Layer]
    cuts: list[Cut]
    facts: GraphFacts = field(repr=False)
    withheld: dict[int, str] = field(default_factory=dict)
    """Cut positions never offered, each with the live value that cannot be sent (``mask: NoneType``)."""

    @property
    def positions(self) -> int:
        """Cut positions in all: before the first layer and after each."""
        return len(self.layers) + 1

    def cut(self, index: int) -> Cut:
        for cut in self.cuts:
            if cut.index == index:
                return cut
        valid = ", ".join(str(cut.index) for cut in self.cuts)
        raise BadInput(f"model '{self.name}' has no cut {index} at {self.granularity} granularity; valid: {valid}")

    def live(self, index: int) -> tuple[Crossing, ...]:
        return self.cut(index).live

    @property
    def output_structure(self) -> pytree.TreeSpec:
        """How the model's output is built from the flat leaves that a tail's output travels as."""
        return self.facts.nodes["output"].spec

    def head(self, index: int) -> Head:
        """The edge segment of cut ``index``: model inputs to the live values."""
        return self.segment(None, index)

    def tail(self, index: int) -> Tail:
        """The cloud segment of cut ``index``: the live values to the model's output."""
        return self.segment(index, None)

    def segments(self, cuts: Sequence[int]) -> list[Segment]:
        """The ``len(cuts) + 1`` consecutive segments between ``cuts`` (increasing), for a pipeline of
        hosts: the first takes the model's inputs, each returns what is live at its cut (a skip
        connection that spans several segments passes through each), the last gives the output."""
        if list(cuts) != sorted(set(cuts)):
            raise BadInput(f"cuts {list(cuts)}: expected increasing cut indices, each once")
        ends: list[int | None] = [None, *cuts, None]
        return [self.segment(start, end) for start, end in itertools.pairwise(ends)]

    def segment(self, start: int | None, end: int | None) -> Segment:
        """The layers after cut ``start`` up to cut ``end``; None: from the model's inputs, or to its output."""
        first = self._crossing_plan(start) if start is not None else None
        last = self._crossing_plan(end) if end is not None else None
        low = first[0] if first else -1
        high = last[0] if last else len(self._compute)
        if high < low:
            raise BadInput(f"segment from cut {start} to cut {end}: expected the second cut after the first")
        body = {node for node in self._compute if low < self._position[node] <= high}
        inputs = first[1] if first else self._placeholders
        outputs = tuple(last[1]) if last else self._output.args[0]
        graph_module = carve(self.graph_module, inputs, body, outputs, copy_inputs=first is None)
        return Segment(graph_module, first[2] if first else None, flatten=last is not None and last[2] is not None)

    def _crossing_plan(self, index: int):
        """The last head position of cut ``index``, its live nodes, and their structure on the wire."""
        self.cut(index)
        boundary = self._layer_end[index]
        live = self._live_nodes(boundary)
        return boundary, live, live_structure([self.facts.nodes[node.name].spec for node in live])

    @cached_property
    def tensor_names(self) -> list[str]:
        """Every parameter, buffer and constant tensor the graph holds, by the names the layers'
        parameters use (what a copy of the model needs besides its architecture)."""
        module = self.graph_module
        named = [*self.facts.param_bytes, *(name for name, _ in module.named_parameters())]
        named += [name for name, _ in module.named_buffers()]
        return [name for name in dict.fromkeys(named) if isinstance(attribute(module, name), torch.Tensor)]

    @cached_property
    def layer_params(self) -> list[frozenset[str]]:
        """The names of the parameters and buffers each layer reads (what it needs to run)."""
        by_name = {node.name: node for node in self.graph_module.graph.nodes}
        found = []
        for layer in self.layers:
            params: set[str] = set()
            for name in layer.nodes:
                params |= self.facts.nodes[name].params
                for argument in by_name[name].all_input_nodes:
                    if argument.op == "get_attr":
                        params |= self.facts.nodes[argument.name].params
            found.append(frozenset(params))
        return found

    @cached_property
    def weights_digest(self) -> str:
        """A digest of the weights, for checking that edge and cloud hold the same network."""
        return weights_digest(self.graph_module)

    @cached_property
    def _compute(self) -> list[fx.Node]:
        return [node for node in self.graph_module.graph.nodes if node.op in COMPUTE_OPS]

    @cached_property
    def _placeholders(self) -> list[fx.Node]:
        return [node for node in self.graph_module.graph.nodes if node.op == "placeholder"]

    @cached_property
    def _output(self) -> fx.Node:
        return next(node for node in self.graph_module.graph.nodes if node.op == "output")

    @cached_property
    def _position(self) -> dict[fx.Node, int]:
        positions = {node: -1 for node in self._placeholders}
        positions.update({node: position for position, node in enumerate(self._compute)})
        return positions

    @cached_property
    def _last_use(self) -> dict[fx.Node, int]:
        """For each value, the position of the last node that reads it (past the end: the output)."""
        end = len(self._compute)
        last = {}
        for node in self._position:
            uses = [end if user.op == "output" else self._position[user] for user in node.users]
            last[node] = max(uses, default=-1)
        return last

    @cached_property
    def _layer_end(self) -> dict[int, int]:
        by_name = {node.name: node for node in self._compute}
        ends = {0: -1}
        for index, layer in enumerate(self.layers, start=1):
            ends[index] = self._position[by_name[layer.nodes[-1]]]
        return ends

    def _live_nodes(self, boundary: int) -> list[fx.Node]:
        return [node for node, position in self._position.items() if position <= boundary < self._last_use[node]]


def build_split_graph(
    loaded: LoadedModel,
    granularity: Granularity = Granularity.MODULE,
    input_shape: tuple[int, ...] | None = None,
    single_tensor_only: bool = False,
) -> SplitGraph:
    """Trace ``loaded`` on an example of ``input_shape`` and price every cut at ``granularity``.

    ``single_tensor_only`` keeps the cuts where exactly one tensor crosses (indices unchanged).
    Positions where a value that cannot be sent (a dtype, a string) is live are never offered.
    """
    shape = tuple(input_shape or loaded.input_shape)
    example = (torch.randn(shape),)
    check_input_fits(loaded, example)
    traced = trace(loaded, example)
    facts = analyse(traced.graph_module, example)
    layers = group_layers(traced.graph_module, loaded.module, facts, granularity)
    split = SplitGraph(loaded.name, granularity, shape, traced.tracer, traced.graph_module, layers, [], facts)
    split.cuts, split.withheld = _price_cuts(split)
    if single_tensor_only:
        split.cuts = [cut for cut in split.cuts if cut.single_tensor]
    return split


def check_input_fits(loaded: LoadedModel, example: tuple[torch.Tensor, ...]) -> None:
    """Run the model once so that a wrong input shape fails here, with the model's own complaint."""
    shape = ",".join(str(size) for size in example[0].shape)
    try:
        with torch.no_grad():
            loaded.module(*example)
    except (RuntimeError, ValueError, AssertionError, IndexError) as error:
        text = str(error).strip()
        reason = text.splitlines()[0] if text else type(error).__name__
        raise BadInput(f"input shape {shape} does not fit model '{loaded.name}': {reason}") from error


def _price_cuts(split: SplitGraph) -> tuple[list[Cut], dict[int, str]]:
    facts = split.facts
    compute = split._compute
    params_at = [
        facts.nodes[node.name].params.union(
            *(facts.nodes[arg.name].params for arg in node.all_input_nodes if arg.op == "get_attr")
        )
        for node in compute
    ]
    edge_params = [set()]
    for params in params_at:
        edge_params.append(edge_params[-1] | params)
    cloud_params = [set()]
    for params in reversed(params_at):
        cloud_params.append(cloud_params[-1] | params)
    cloud_params.reverse()
    total_flops = sum(facts.nodes[node.name].flops for node in compute)
    cuts = []
    withheld = {}
    edge_flops = 0
    for index in range(len(split.layers) + 1):
        layer = split.layers[index - 1] if index else None
        layer_flops = sum(facts.nodes[name].flops for name in layer.nodes) if layer else 0
        edge_flops += layer_flops
        boundary = split._layer_end[index]
        live = split._live_nodes(boundary)
        crossings = _crossings(facts, live)
        if crossings is None:
            blocking = next(node.name for node in live if facts.nodes[node.name].leaves is None)
            withheld[index] = f"{blocking}: {facts.nodes[blocking].unsendable}"
            continue
        cuts.append(
            Cut(
                index=index,
                after=layer.name if layer else "input",
                op=layer.op if layer else "input",
                live=crossings,
                bytes=sum(crossing.nbytes for crossing in crossings if crossing.kind == "tensor"),
                edge_param_bytes=facts.bytes_of(edge_params[boundary + 1]),
                cloud_param_bytes=facts.bytes_of(cloud_params[boundary + 1]),
                flops=layer_flops,
                edge_flops=edge_flops,
                cloud_flops=total_flops - edge_flops,
            )
        )
    return cuts, withheld


def _crossings(facts: GraphFacts, live: list[fx.Node]) -> tuple[Crossing, ...] | None:
    """What crosses for these live values, or None if one of them cannot be sent."""
    crossings = []
    for node in live:
        leaves = facts.nodes[node.name].leaves
        if leaves is None:
            return None
        crossings += [replace(leaf, name=node.name + leaf.name) for leaf in leaves]
    return tuple(crossings)
