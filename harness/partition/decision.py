"""What a partitioner returns: its cut, and its predicted latency for every cut it priced."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Decision:
    """``cut`` is the partitioner's pick. ``argmin`` is the cut its own predictions rank best, where
    its rule picks otherwise (Neurosurgeon's first-cut inequality); ``note`` says why a pick was
    adjusted. ``edge_layers`` lists the layers a graph partitioner put on the edge when that set is
    not a prefix of the execution order."""

    partitioner: str
    cut: int
    predicted_ms: dict[int, float]
    argmin: int | None = None
    note: str = ""
    edge_layers: tuple[int, ...] = field(default=())
