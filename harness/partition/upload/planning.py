"""``harness plan --upload``: each upload plan of a manifest's runs, with its predicted timeline and,
with ``--simulate``, its replay with the link and the worker shared.

The chain comes from the same profiles ``harness plan`` uses (a sweep's ``layers.parquet``, a
profiling sweep on an inventory, or this machine), or from a published per-layer profile (a CSV, see
``published``): then the manifest's model is not built at all, and its link, units and plans apply
to the published layers. Profiling here times both roles on one processor, so the server is no
faster than the client and the plans upload nothing worth having; the note says so.
"""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.errors import BadInput
from harness.manifest import LoadedManifest
from harness.manifest.matrix import Run
from harness.model import SplitGraph
from harness.partition.evaluate import split_for
from harness.partition.planning import layers_file, saved_profiles
from harness.partition.situation import profile_here
from harness.partition.upload import PlannedUpload, UploadChain, plan_upload
from harness.partition.upload.published import published_chain
from harness.partition.upload.simulate import Simulated, simulate
from harness.partition.upload.units import upload_chain
from harness.results import ResultsFolder

SAME_MACHINE = "both roles profiled on this machine: the server is no faster than the client"


@dataclass(frozen=True)
class UploadPlanned:
    run: Run
    chain: UploadChain
    planned: PlannedUpload
    simulated: Simulated | None
    note: str = ""


def upload_plans(
    loaded: LoadedManifest,
    profiles: ResultsFolder | None,
    published: Path | None = None,
    run_simulation: bool = False,
    repeats: int = 10,
) -> list[UploadPlanned]:
    """Every run's plan, from ``published`` (a per-layer CSV) or the runs' own profiles."""
    if loaded.manifest.upload is None:
        raise BadInput(
            f"{loaded.rendered.path}: no upload section; expected upload: {{plans: [ionn, recursive-efficiency]}}"
        )
    layers = pd.read_parquet(layers_file(profiles)) if profiles is not None and published is None else None
    splits: dict[str, SplitGraph] = {}
    here: dict[str, list[float]] = {}
    found = []
    for run in loaded.runs:
        upload = run.upload
        note = ""
        if published is not None:
            chain = published_chain(published, run.link.rate_bytes / 1e3, run.model.name)
        else:
            key = run.model.model_dump_json()
            split = splits.setdefault(key, split_for(run.model))
            if layers is not None:
                edge_ns, cloud_ns = saved_profiles(layers, run.id, run.model.name, split, str(profiles.layers))
            else:
                if key not in here:
                    here[key] = profile_here(split, repeats)
                edge_ns = cloud_ns = here[key]
                note = SAME_MACHINE
            chain = upload_chain(split, edge_ns, cloud_ns, run.link.rate_bytes, run.link.delay_ns / 1e9, upload.units)
        plan = upload.plans[0]
        planned = plan_upload(plan.name, chain, **plan.planner_options)
        simulated = (
            simulate(chain, planned.timeline, upload.chunk_bytes, upload.first_query, upload.after)
            if run_simulation
            else None
        )
        found.append(UploadPlanned(run, chain, planned, simulated, note))
    return found
