"""A schedule that visits every cut once per pass, ``repeats`` passes: the fair one for comparing cuts.

Under ``cyclic`` a cut's repeats run back to back, so whatever drifts over minutes (a throttled
edge's share of the CPU, the machine's other work) lands on some cuts and not on others: in the
virtual lab, resnet18's last three cuts (the same work give or take a linear layer) measured 117,
133 and 148 ms one after another. Interleaved, every cut sees the same drift, and a partitioner's
pick is compared with the best cut on equal terms.
"""

from collections.abc import Iterator, Sequence

from harness.errors import BadInput


def round_robin(cuts: Sequence[int], repeats: int) -> Iterator[tuple[int, int]]:
    """``(cut, repeat)`` for every cut in order, then again, ``repeats`` passes."""
    if repeats < 1:
        raise BadInput(f"round-robin partitioner: repeats {repeats}, expected at least 1")
    for repeat in range(repeats):
        for cut in cuts:
            yield cut, repeat
