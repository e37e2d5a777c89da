"""addnn's IoT/edge/cloud scenario as placement problems: the hierarchy its authors benchmarked
their strategies on, with its parameters, on a chain profile from our own split engine.

A third of the hosts are IoT devices (Raspberry Pi A+: 218 MFLOPS, 256 MB), a third edge hosts
(Raspberry Pi 4B: 10.3 GFLOPS, 4 GB), the rest cloud hosts (Xeon E5-2620 v4: 184 GFLOPS, 32 GB);
each host draws its compute and memory uniformly from 10% to 100% of its tier's figure. Links inside
a tier carry 1 Gbit/s with no delay; IoT-edge links 5 to 50 Mbit/s with 25 ms, IoT-cloud 0.5 to
5 Mbit/s with 50 ms, edge-cloud 10 to 100 Mbit/s with 25 ms (uniform from 10% of the figure). The
first IoT device holds the input. Each unordered pair draws one rate, used both ways. A segment's
compute time on a host is its FLOPs over the host's rate; addnn leaves the reply out, here it is the
classifier's output, a few kB, priced like any hop.
"""

from dataclasses import dataclass

import numpy as np

from harness.errors import BadInput
from harness.partition.placement.problem import Problem

TIERS = (
    ("iot", 218e6, 256e6),
    ("edge", 10.3e9, 4e9),
    ("cloud", 184e9, 32e9),
)
INTRA_TIER_BITS = 1e9
BETWEEN_TIERS = {(0, 1): (50e6, 0.025), (0, 2): (5e6, 0.050), (1, 2): (100e6, 0.025)}
LOWEST_SHARE = 0.1


@dataclass(frozen=True)
class Chain:
    """A model as a chain of segments: FLOPs and parameter bytes of each, bytes live at each cut
    (the input first, the output last)."""

    name: str
    flops: np.ndarray
    param_bytes: np.ndarray
    cut_bytes: np.ndarray


def tier_sizes(hosts: int) -> tuple[int, int, int]:
    third = hosts // 3
    return third, third, hosts - 2 * third


def iot_edge_cloud(chain: Chain, hosts: int, seed: int) -> Problem:
    if hosts < 3:
        raise BadInput(f"addnn's scenario needs at least 3 hosts (one per tier); got {hosts}")
    rng = np.random.default_rng(seed)
    tiers = np.repeat(np.arange(3), tier_sizes(hosts))
    peak_flops = np.array([flops for _, flops, _ in TIERS])[tiers]
    peak_memory = np.array([memory for *_, memory in TIERS])[tiers]
    compute = rng.uniform(LOWEST_SHARE, 1.0, hosts) * peak_flops
    memory = rng.uniform(LOWEST_SHARE, 1.0, hosts) * peak_memory
    bits = np.full((hosts, hosts), INTRA_TIER_BITS)
    delay = np.zeros((hosts, hosts))
    for (lower, upper), (peak_bits, seconds) in BETWEEN_TIERS.items():
        pair = (tiers[:, None] == lower) & (tiers[None, :] == upper)
        drawn = rng.uniform(LOWEST_SHARE, 1.0, (hosts, hosts)) * peak_bits
        bits[pair] = drawn[pair]
        bits.T[pair] = drawn[pair]
        delay[pair | pair.T] = seconds
    names = tuple(f"{TIERS[tier][0]}{index}" for tier, count in enumerate(tier_sizes(hosts)) for index in range(count))
    return Problem(
        host_names=names,
        tiers=tiers,
        memory_bytes=memory,
        compute_s=chain.flops[None, :] / compute[:, None],
        segment_bytes=chain.param_bytes.astype(float),
        cut_bytes=chain.cut_bytes.astype(float),
        rate=bits / 8,
        delay_s=delay,
        source=0,
    )
