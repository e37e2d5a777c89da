"""DADS: the min-cut partition of the model's data-flow graph between edge and cloud.

The graph's units are the split graph's layers (each graph node at node granularity). Following
DADS, the source is the edge and the sink the cloud: a unit left on the edge cuts its edge to the
sink (its edge latency), a unit moved to the cloud cuts the source's edge to it (its cloud latency).
Each value a unit produces for later units passes through one extra vertex, entered at the cost of
sending it, so a value read by several cloud units is charged once. Every data edge also gets an
infinite edge backwards, so no unit runs on the edge after one of its inputs went to the cloud:
without it the minimum can be a ping-pong partition whose transfers are not charged. The model's
input is pinned to the edge and its output to the cloud, as every cut of a sweep sends the output.

The minimum may put on the edge a set of units that is not a prefix of the graph's execution
order (one branch of an inception block, say). Segments are carved at positions in that order,
so such a set is reported and the minimum over prefixes is taken as the pick, with a note.
"""

import networkx as nx

from harness.partition.decision import Decision
from harness.partition.situation import Situation

_EDGE, _CLOUD, _INPUT, _OUTPUT = "edge", "cloud", "input", "output"


def flow_graph(situation: Situation, prefix_only: bool = False) -> nx.DiGraph:
    """The flow network, capacities in integer nanoseconds (no capacity: infinite)."""
    split = situation.split
    unit_of = {name: position for position, layer in enumerate(split.layers, start=1) for name in layer.nodes}
    graph = nx.DiGraph()
    graph.add_edge(_EDGE, _INPUT)
    graph.add_edge(_OUTPUT, _CLOUD)
    for layer in situation.layers:
        graph.add_edge(_EDGE, layer.index, capacity=round(layer.cloud_ns))
        graph.add_edge(layer.index, _CLOUD, capacity=round(layer.edge_ns))
    for node in split.graph_module.graph.nodes:
        producer = _INPUT if node.op == "placeholder" else unit_of.get(node.name)
        if producer is None:
            continue
        consumers = {_OUTPUT if user.op == "output" else unit_of[user.name] for user in node.users}
        consumers.discard(producer)
        if not consumers:
            continue
        leaves = split.facts.nodes[node.name].leaves or ()
        nbytes = sum(
            situation.codec.payload_size(leaf.dtype, leaf.shape, leaf.nbytes)
            for leaf in leaves
            if leaf.kind == "tensor"
        )
        value = ("value", node.name)
        graph.add_edge(producer, value, capacity=round(1e9 * nbytes / situation.link.rate))
        for consumer in consumers:
            graph.add_edge(value, consumer)
            graph.add_edge(consumer, producer)
    if prefix_only:
        for layer in situation.layers[1:]:
            graph.add_edge(layer.index, layer.index - 1)
    return graph


def edge_units(situation: Situation, prefix_only: bool = False) -> set[int]:
    """The layers the minimum cut leaves on the edge."""
    _, (edge_side, _) = nx.minimum_cut(flow_graph(situation, prefix_only), _EDGE, _CLOUD)
    return {unit for unit in edge_side if isinstance(unit, int)}


def decide(situation: Situation) -> Decision:
    predicted = situation.profiled_ms
    units = edge_units(situation)
    note = ""
    layers: tuple[int, ...] = ()
    if units != set(range(1, len(units) + 1)):
        layers = tuple(sorted(units))
        note = f"the minimum puts {len(units)} layers on the edge that are not a prefix; took the best prefix"
        units = edge_units(situation, prefix_only=True)
    cut = len(units)
    if cut not in predicted:
        best = min(predicted, key=lambda index: (predicted[index], index))
        note = f"the minimum cuts after layer {cut}, where a value cannot be sent; took cut {best}"
        cut = best
    return Decision("dads", cut, predicted, note=note, edge_layers=layers)
