"""Split-computing experiment harness: cut a network, run its halves on two hosts, measure everything."""

__version__ = "0.1.0"
