"""Partitioners: which cut each inference of a sweep uses. One module each, registered by name."""

from harness.partition.cyclic import cyclic

__all__ = ["cyclic"]
