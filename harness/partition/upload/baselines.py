"""The plans an upload planner must beat: the whole model in one piece (what a client does without a
planner, and what leaves every query local until the end), and one unit at a time in execution order
(the finest plan, blind to what each unit is worth). Units that cost no upload are on the server
from the start and in neither."""

from harness.partition.upload.chain import UploadChain
from harness.partition.upload.timeline import UploadPlan


def all_at_once(chain: UploadChain) -> UploadPlan:
    return UploadPlan("all-at-once", (chain.costly,) if chain.costly else ())


def layerwise(chain: UploadChain) -> UploadPlan:
    return UploadPlan("layerwise", tuple((index,) for index in chain.costly))
