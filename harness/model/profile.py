"""Per-layer latency of the segments a host actually runs, measured with forward hooks.

Functional nodes (an ``add``, a ``flatten``) have no module to hook, so the segment is rebuilt with
every node wrapped in a small module; pre- and post-forward hooks on those wrappers read a monotonic
nanosecond clock. The wrappers share the segment's parameters. Figures are per node, summed per
layer of the split graph's granularity, over repeats after a warm-up.

On a CUDA device each hook synchronises the device before it reads the clock: kernels are queued,
not run, when a layer returns, so an unsynchronised reading would time the queueing. The extra
synchronisation costs each layer a few microseconds, the price of a per-layer figure on a GPU.
"""

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import fx, nn
from torch.utils import _pytree as pytree

from harness.model.analysis import COMPUTE_OPS, attribute
from harness.model.graph import SplitGraph


class NodeCall(nn.Module):
    """One graph node as a module, so that hooks see it like any layer."""

    def __init__(self, node_name: str, call: Callable):
        super().__init__()
        self.node_name = node_name
        self.call = call  # a layer is registered as a child, sharing its parameters

    def forward(self, *args, **kwargs):
        return self.call(*args, **kwargs)


def _method_call(name: str) -> Callable:
    def call(receiver, *args, **kwargs):
        return getattr(receiver, name)(*args, **kwargs)

    call.__name__ = name
    return call


def instrument(segment: fx.GraphModule) -> fx.GraphModule:
    """A copy of ``segment`` whose every compute node runs as a ``NodeCall`` module."""
    graph = fx.Graph()
    owner: dict[str, object] = {}
    env: dict[fx.Node, fx.Node] = {}
    for node in segment.graph.nodes:
        if node.op in COMPUTE_OPS:
            if node.op == "call_module":
                call = segment.get_submodule(node.target)
            elif node.op == "call_method":
                call = _method_call(node.target)
            else:
                call = node.target
            target = f"timed_{node.name}"
            owner[target] = NodeCall(node.name, call)
            args = fx.map_arg(node.args, env.__getitem__)
            kwargs = fx.map_arg(node.kwargs, env.__getitem__)
            env[node] = graph.call_module(target, args, kwargs)
            env[node].name = node.name
        else:
            if node.op == "get_attr":
                owner[node.target] = attribute(segment, node.target)
            env[node] = graph.node_copy(node, env.__getitem__)
    return fx.GraphModule(owner, graph, "Instrumented" + segment.__class__.__name__)


_CPU = torch.device("cpu")


class _HookTimer:
    """Collects per-node durations from pre/post forward hooks on ``NodeCall`` modules."""

    def __init__(self, module: fx.GraphModule, device: torch.device):
        self.device = device
        self.samples: dict[str, list[int]] = defaultdict(list)
        self._started: dict[str, int] = {}
        self.handles = []
        for submodule in module.modules():
            if isinstance(submodule, NodeCall):
                self.handles.append(submodule.register_forward_pre_hook(self._before))
                self.handles.append(submodule.register_forward_hook(self._after))

    def _now(self) -> int:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter_ns()

    def _before(self, module: NodeCall, args) -> None:
        self._started[module.node_name] = self._now()

    def _after(self, module: NodeCall, args, output) -> None:
        self.samples[module.node_name].append(self._now() - self._started[module.node_name])

    def reset(self) -> None:
        self.samples.clear()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def time_nodes(
    segment: fx.GraphModule, inputs: tuple, repeats: int, warmup: int, device: torch.device = _CPU
) -> dict[str, list[int]]:
    """Run ``segment`` ``warmup`` + ``repeats`` times on ``device`` (where its parameters and
    ``inputs`` already are); nanoseconds per node per measured run."""
    instrumented = instrument(segment)
    timer = _HookTimer(instrumented, device)
    try:
        with torch.no_grad():
            for _ in range(warmup):
                instrumented(*[_fresh(value) for value in inputs])
            timer.reset()
            for _ in range(repeats):
                instrumented(*[_fresh(value) for value in inputs])
        return dict(timer.samples)
    finally:
        timer.remove()


def _fresh(value):
    """A copy of an input tensor, since in-place layers may modify what they are given."""
    return value.clone() if isinstance(value, torch.Tensor) else value


@dataclass(frozen=True)
class LayerTiming:
    """Latency of one layer on one side of the cut, over the measured runs."""

    index: int
    name: str
    op: str
    side: str
    median_ms: float
    p95_ms: float
    mean_ms: float
    """Over the runs, stalls included: what back-to-back inferences take on average, where a CPU
    quota or a busy processor stalls a few runs of a layer (which its median leaves out)."""


@dataclass
class ProfileReport:
    model: str
    granularity: str
    cut: int
    threads: int
    repeats: int
    layers: list[LayerTiming]
    device: str = "cpu"

    @property
    def total_median_ms(self) -> float:
        return sum(layer.median_ms for layer in self.layers)


def profile(
    split: SplitGraph, cut: int | None = None, repeats: int = 20, warmup: int = 5, device: str | torch.device = "cpu"
) -> ProfileReport:
    """Per-layer latency of head and tail at ``cut`` (default: the last cut, the whole model on one
    host) on ``device``. Head and tail share the split graph's parameters, so these move there too:
    the graph is then the device's, as it is on a worker whose segments run there."""
    device = torch.device(device)
    index = split.cuts[-1].index if cut is None else split.cut(cut).index
    example = torch.randn(split.input_shape).to(device)
    head = split.head(index)
    head.graph_module.to(device)
    with torch.no_grad():
        live = head(example.clone())
    per_node = time_nodes(head.graph_module, (example,), repeats, warmup, device)
    tail = split.tail(index)
    tail.graph_module.to(device)
    tail_inputs = live if tail.live_spec is None else tuple(pytree.tree_unflatten(list(live), tail.live_spec))
    per_node |= time_nodes(tail.graph_module, tuple(tail_inputs), repeats, warmup, device)
    layers = []
    for position, layer in enumerate(split.layers, start=1):
        runs = np.zeros(repeats, dtype=np.int64)
        for name in layer.nodes:
            if name in per_node:
                runs += np.asarray(per_node[name], dtype=np.int64)
        layers.append(
            LayerTiming(
                index=position,
                name=layer.name,
                op=layer.op,
                side="edge" if position <= index else "cloud",
                median_ms=float(np.median(runs)) / 1e6,
                p95_ms=float(np.percentile(runs, 95)) / 1e6,
                mean_ms=float(np.mean(runs)) / 1e6,
            )
        )
    return ProfileReport(
        split.name, str(split.granularity), index, torch.get_num_threads(), repeats, layers, str(device)
    )
