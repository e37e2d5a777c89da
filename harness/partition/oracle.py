"""The measured optimum: the cut whose median end-to-end latency was lowest in the sweep's records.

It predicts nothing; it is the yardstick the other partitioners' regret is taken against. With
``single_tensor`` it keeps to the cuts where one tensor crosses, the only cuts a partitioner that
sends a single tensor (or a test-bed that splits a layer list) can choose: what DADS's multi-tensor
cuts are compared with.
"""

from harness.errors import BadInput
from harness.partition.decision import Decision
from harness.partition.situation import Situation


def decide(situation: Situation, single_tensor: bool = False) -> Decision:
    allowed = set(situation.cuts)
    if single_tensor:
        allowed &= {cut.index for cut in situation.split.cuts if cut.single_tensor}
    measured = {cut: value for cut, value in situation.measured_ms.items() if cut in allowed}
    if not measured:
        which = "single-tensor cuts" if single_tensor else "cuts"
        raise BadInput(
            f"partitioner 'oracle' needs measured records of {which} of model '{situation.split.name}': "
            "evaluate it in a sweep, or plan from a results folder that holds records"
        )
    return Decision("oracle", min(measured, key=lambda cut: (measured[cut], cut)), measured)
