"""A split model as an upload chain: its units, their profiled times and parameters, and the link.

With ``units: cut`` a unit is the layers between two consecutive single-tensor cuts, which is how a
DAG becomes a chain (an inception module or a residual block is one unit, as IONN groups them); with
``units: layer`` every cut is a boundary, for chains. A boundary's bytes are everything live at its
cut, as the split engine sends them.

A parameter that several units read (tied weights) is carried by the first of them, once; a later
unit that reads it is served only once that one is up, which the worker checks parameter by
parameter. A plan may price such a unit a little low; no torchvision model shares weights.
"""

import itertools

from harness.errors import BadInput
from harness.model import SplitGraph
from harness.partition.upload.chain import Unit, UploadChain

UNITS = ("cut", "layer")


def unit_bounds(split: SplitGraph, units: str) -> list[int]:
    """The cut indices that bound units, from 0 (the input) to the last layer."""
    if units not in UNITS:
        raise BadInput(f"units '{units}': expected one of {', '.join(UNITS)}")
    last = len(split.layers)
    inner = [cut.index for cut in split.cuts if 0 < cut.index < last and (units == "layer" or cut.single_tensor)]
    return [0, *inner, last]


def upload_chain(
    split: SplitGraph,
    edge_ns: list[float],
    cloud_ns: list[float],
    rate_bytes: float,
    delay_s: float = 0.0,
    units: str = "cut",
    build_ms: list[float] | None = None,
) -> UploadChain:
    """``edge_ns`` and ``cloud_ns``: per-layer profiles (the client and the server); ``build_ms``:
    the server's time to build each unit, 0 where none was measured."""
    if not (len(edge_ns) == len(cloud_ns) == len(split.layers)):
        raise BadInput(
            f"profiles of model '{split.name}' have {len(edge_ns)} edge and {len(cloud_ns)} cloud layers; "
            f"expected {len(split.layers)} at {split.granularity} granularity"
        )
    bounds = unit_bounds(split, units)
    if build_ms is not None and len(build_ms) != len(bounds) - 1:
        raise BadInput(f"build times for {len(build_ms)} units; expected {len(bounds) - 1}")
    reads = split.layer_params
    carried: set[str] = set()
    chain = []
    for number, (start, end) in enumerate(itertools.pairwise(bounds)):
        params = sorted(set().union(*reads[start:end]) - carried)
        carried |= set(params)
        names = (split.layers[start].name, split.layers[end - 1].name)
        chain.append(
            Unit(
                name=names[0] if start == end - 1 else f"{names[0]}..{names[1]}",
                client_ms=sum(edge_ns[start:end]) / 1e6,
                server_ms=sum(cloud_ns[start:end]) / 1e6,
                param_bytes=split.facts.bytes_of(set(params)),
                build_ms=0.0 if build_ms is None else float(build_ms[number]),
                first=start,
                last=end - 1,
                params=tuple(params),
            )
        )
    boundary = tuple(split.cut(index).bytes for index in bounds)
    return UploadChain(split.name, tuple(chain), boundary, rate_bytes / 1e3, delay_s * 1e3)
