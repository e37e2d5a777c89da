"""The seed test-bed's cyclic partitioner: the first allowed cut, repeated n times, then the next.

A sweep over every cut is this schedule; the order matters because caches, clocks and the link warm
up with use, and the seed's figures were taken in this order.
"""

from collections.abc import Iterator, Sequence

from harness.errors import BadInput


def cyclic(cuts: Sequence[int], repeats: int) -> Iterator[tuple[int, int]]:
    """``(cut, repeat)`` for each cut in order, ``repeats`` times each."""
    if repeats < 1:
        raise BadInput(f"cyclic partitioner: repeats {repeats}, expected at least 1")
    for cut in cuts:
        for repeat in range(repeats):
            yield cut, repeat
