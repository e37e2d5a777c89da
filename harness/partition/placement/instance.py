"""A placement problem for a lab: the manifest's model as a chain of segments between its cuts, the
hosts of its tier groups as the inventory lists them, and the links between them.

Segment times come from per-layer profiles: a host's own, where a sweep recorded one for it, else
one profile of the whole model on this machine scaled by the host's ``harness_speed`` inventory
variable (how many times faster than this machine it runs the model; 1 by default). Memory comes
from ``harness_memory_bytes`` (unlimited by default). A placement is decided before anything is
deployed, so nothing is asked of the hosts. Links are a measured
matrix (``harness links measure``) where one is given, else the manifest's link declared for
every pair of different hosts.

The source is the first host of the first tier, where the edge driver runs; its placement's
blocks become the harness's pipeline: the edge runs to the first cut, each later host a range.
"""

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.ansible.inventory import check_groups, host_variables, inventory_groups
from harness.errors import BadInput
from harness.links.matrix import LinkMatrix
from harness.model import SplitGraph
from harness.partition.placement.problem import Problem
from harness.partition.situation import layer_param_bytes

SPEED_VARIABLE = "harness_speed"
MEMORY_VARIABLE = "harness_memory_bytes"


@dataclass(frozen=True)
class TierHost:
    name: str
    group: str
    tier: int
    speed: float
    memory_bytes: float


@dataclass(frozen=True)
class LabInstance:
    """A problem, and what its segments and hosts are in the lab: ``cuts[k]`` is the split graph's
    cut index at the problem's cut position ``k`` (0 the input, the last the output)."""

    problem: Problem
    hosts: tuple[TierHost, ...]
    cuts: tuple[int, ...]
    links: str

    def given(self, cuts: list[int]) -> tuple[int, ...]:
        """The placement of a manifest's pipeline ``cuts``: the source runs to the first, the first
        host of each later tier from its cut to the next (the host a sweep would use)."""
        firsts = [
            next(index for index, host in enumerate(self.hosts) if host.tier == tier)
            for tier in range(1, 1 + len(cuts))
        ]
        return self.placement_of(cuts, firsts)

    def placement_of(self, cuts, workers) -> tuple[int, ...]:
        """The placement of a pipeline: the source runs up to ``cuts[0]``, host ``workers[i]`` (an
        index, or a host's name) from ``cuts[i]`` to the next cut."""
        names = [host.name for host in self.hosts]
        owners = [self.problem.source, *(names.index(host) if isinstance(host, str) else host for host in workers)]
        placement, stage = [], 0
        for position in range(self.problem.segments):
            while stage < len(cuts) and self.cuts[position] >= cuts[stage]:
                stage += 1
            placement.append(owners[stage])
        return tuple(placement)

    def pipeline(self, placement: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """The harness's cuts and worker hosts for ``placement``: the edge (the source) runs up to
        the first cut (0 when its input leaves at once), each worker from one cut to the next. Empty
        when the source runs everything."""
        source = self.problem.source
        cuts, workers = [], []
        for position, host in enumerate(placement):
            previous = placement[position - 1] if position else source
            if host != previous:
                cuts.append(self.cuts[position])
                workers.append(self.hosts[host].name)
        return tuple(cuts), tuple(workers)


def tier_hosts(inventory: Path, tiers: tuple[str, ...]) -> list[TierHost]:
    """The hosts of each tier group in order, with the speed and memory their variables give."""
    groups = inventory_groups(inventory)
    check_groups(inventory, groups, {f"tiers[{number}]": group for number, group in enumerate(tiers)})
    variables = host_variables(inventory)
    seen: dict[str, str] = {}
    hosts = []
    for tier, group in enumerate(tiers):
        for name in groups[group]:
            if name in seen:
                raise BadInput(
                    f"inventory {inventory}: host {name} is in tier groups {seen[name]} and {group}; "
                    "expected each host in one tier"
                )
            seen[name] = group
            facts = variables.get(name, {})
            speed = _positive(inventory, name, SPEED_VARIABLE, facts.get(SPEED_VARIABLE, 1.0))
            memory = _positive(inventory, name, MEMORY_VARIABLE, facts.get(MEMORY_VARIABLE, math.inf))
            hosts.append(TierHost(name, group, tier, speed, memory))
    return hosts


def _positive(inventory: Path, host: str, variable: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise BadInput(f"inventory {inventory}: host {host}: {variable} is {value!r}; expected a number above 0")
    return float(value)


def lab_instance(
    split: SplitGraph,
    offered: list[int],
    layer_ns: list[list[float]],
    hosts: list[TierHost],
    links: LinkMatrix,
    links_label: str,
) -> LabInstance:
    """The problem of placing ``split``'s segments between its ``offered`` cuts on ``hosts``, with
    ``layer_ns[h]`` host ``h``'s nanoseconds per layer."""
    last = len(split.layers)
    cuts = sorted(set(offered))
    if not cuts or cuts[0] != 0 or cuts[-1] != last:
        raise BadInput(
            f"model '{split.name}': a placement needs cuts at its input (0) and output ({last}) at "
            f"{split.granularity} granularity; the cuts offered run from {cuts[0] if cuts else '-'} "
            f"to {cuts[-1] if cuts else '-'}"
        )
    missing = [host.name for host in hosts if host.name not in links.hosts]
    if missing:
        raise BadInput(f"{links_label}: no links of host {', '.join(missing)}; expected every host of the tiers")
    layer_s = np.asarray(layer_ns, dtype=float) / 1e9
    if layer_s.shape != (len(hosts), last):
        raise BadInput(
            f"profiles of {layer_s.shape[0]} hosts by {layer_s.shape[-1]} layers; expected {len(hosts)} by {last}"
        )
    param_bytes = np.asarray(layer_param_bytes(split), dtype=float)
    spans = list(itertools.pairwise(cuts))
    rate, delay = links.ordered([host.name for host in hosts])
    problem = Problem(
        host_names=tuple(host.name for host in hosts),
        tiers=np.array([host.tier for host in hosts]),
        memory_bytes=np.array([host.memory_bytes for host in hosts]),
        compute_s=np.stack([layer_s[:, start:end].sum(axis=1) for start, end in spans], axis=1),
        segment_bytes=np.array([param_bytes[start:end].sum() for start, end in spans]),
        cut_bytes=np.array([float(split.cut(cut).bytes) for cut in cuts]),
        rate=rate,
        delay_s=delay,
        source=0,
    )
    return LabInstance(problem, tuple(hosts), tuple(cuts), links_label)
