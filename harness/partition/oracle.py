"""The measured optimum: the cut whose median end-to-end latency was lowest in the sweep's records.

It predicts nothing; it is the yardstick the other partitioners' regret is taken against.
"""

from harness.errors import BadInput
from harness.partition.decision import Decision
from harness.partition.situation import Situation


def decide(situation: Situation) -> Decision:
    measured = {cut: value for cut, value in situation.measured_ms.items() if cut in situation.cuts}
    if not measured:
        raise BadInput(
            f"partitioner 'oracle' needs measured records of model '{situation.split.name}': "
            "evaluate it in a sweep, or plan from a results folder that holds records"
        )
    return Decision("oracle", min(measured, key=lambda cut: (measured[cut], cut)), measured)
