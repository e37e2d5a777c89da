"""The link matrix between a lab's hosts: how probes are scheduled, and the measured matrix itself
(rates, round trips, gaps), which placement strategies read and real transfers refine."""

from harness.links.matrix import LinkMatrix, read_matrix
from harness.links.rounds import probe_rounds

__all__ = ["LinkMatrix", "probe_rounds", "read_matrix"]
