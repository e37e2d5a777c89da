"""Partitioners: which cut each inference of a sweep uses, registered by name.

A partitioner here is a schedule: given the allowed cuts and a repeat count it yields the
``(cut, repeat)`` pairs to run, in order. ``cyclic`` is built in; a user's partitioner is
``package.module:function`` from experiments/ with the same signature.
"""

from collections.abc import Callable, Iterable, Sequence

from harness.errors import BadInput
from harness.model.user_code import user_function
from harness.partition.cyclic import cyclic

Schedule = Callable[[Sequence[int], int], Iterable[tuple[int, int]]]
_PARTITIONERS: dict[str, Schedule] = {"cyclic": cyclic}


def partitioner_names() -> list[str]:
    return sorted(_PARTITIONERS)


def schedule(name: str, cuts: Sequence[int], repeats: int) -> list[tuple[int, int]]:
    """The pairs partitioner ``name`` asks for, each checked to use an allowed cut."""
    partitioner = user_function("partitioner", name) if ":" in name else _PARTITIONERS.get(name)
    if partitioner is None:
        raise BadInput(f"partitioner '{name}': expected one of {', '.join(partitioner_names())}")
    pairs = []
    for pair in partitioner(cuts, repeats):
        if not (isinstance(pair, tuple) and len(pair) == 2 and pair[0] in cuts and isinstance(pair[1], int)):
            raise BadInput(f"partitioner '{name}' gave {pair!r}; expected (cut, repeat) with cut in {list(cuts)}")
        pairs.append(pair)
    return pairs


__all__ = ["cyclic", "partitioner_names", "schedule"]
