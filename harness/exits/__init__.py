"""Early exits (seed 002, EdgeLessPart): where to cut a network into an edge part and a cloud part,
where each part's exit classifiers attach, what a serverless cloud charges for the samples that
reach it, and which settings are worth keeping (the non-dominated front over latency, error and
cost).

The network is split first and exits are placed inside each part afterwards, so no exit straddles
the cut and a sample that leaves on the edge sends nothing. Everything here is arithmetic on
per-layer facts (parameter bytes, FLOPs, profiled times, the cuts where one tensor crosses): it
never touches a model, a socket or Ansible.
"""

from harness.exits.cost import PriceModel, load_prices
from harness.exits.front import non_dominated
from harness.exits.placement import ExitPlacement, place_exits
from harness.exits.split_rules import split_by_latency, split_by_layers, split_by_memory

__all__ = [
    "ExitPlacement",
    "PriceModel",
    "load_prices",
    "non_dominated",
    "place_exits",
    "split_by_latency",
    "split_by_layers",
    "split_by_memory",
]
