"""A fixed cut, chosen by hand: the baseline a lab compares an algorithm with (the seed's
"always offload at pool5"). Its predictions are the profiled latencies of every cut."""

from harness.errors import BadInput
from harness.partition.decision import Decision
from harness.partition.situation import Situation


def decide(situation: Situation, cut: int | None = None) -> Decision:
    if cut is None or cut not in situation.cuts:
        raise BadInput(
            f"partitioner 'fixed' needs a cut among the allowed ones of model '{situation.split.name}' "
            f"(got {cut}); write it as {{name: fixed, cut: N}}"
        )
    return Decision("fixed", cut, situation.profiled_ms)
