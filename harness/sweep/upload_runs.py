"""A run with an incremental upload (IONN, seed 004), as the edge host runs it: the model profiled
layer by layer here and on the worker (the profiles every sweep records, taken first because the
plan is made from them), the run's plan made here from those profiles and the link, then each
repeat an upload to a fresh session with queries running, its partitions and queries sent to the
observer and spooled (``uploads.jsonl``, one line per repeat).

Runs of one model share the profile: they differ only in their plan.
"""

from collections.abc import Callable
from dataclasses import dataclass

from harness.manifest.matrix import Run
from harness.model import SplitGraph
from harness.partition.upload import plan_upload
from harness.partition.upload.units import upload_chain
from harness.results.uploads import as_rows
from harness.sweep.observer import LayersMessage
from harness.wire.frames import ModelSpec
from harness.wire.keys import ClientKeys
from harness.worker.edge import LinkSettings
from harness.worker.uploader import UploadExperiment, UploadSettings

UPLOADS_SPOOL = "uploads.jsonl"


@dataclass(frozen=True)
class UploadContext:
    endpoint: str
    keys: ClientKeys | None
    timeout_s: float


def profiles_of(messages: list[LayersMessage]) -> tuple[list[float], list[float]]:
    """Edge and cloud nanoseconds per layer from a run's per-layer messages."""
    by_role = {message.role: [float(row.median_ns) for row in message.layers] for message in messages}
    return by_role["edge"], by_role["cloud"]


def upload_repeats(
    run: Run,
    split: SplitGraph,
    spec: ModelSpec,
    profiles: list[LayersMessage],
    link: LinkSettings,
    context: UploadContext,
    inputs,
    done: set[int],
    emit: Callable[[dict], None],
) -> int:
    """Every repeat of ``run`` not in ``done``: returns how many ran; ``emit`` gets each one's rows."""
    upload = run.upload
    plan = upload.plans[0]
    edge_ns, cloud_ns = profiles_of(profiles)
    chain = upload_chain(split, edge_ns, cloud_ns, link.rate, link.delay_ns / 1e9, upload.units)
    planned = plan_upload(plan.name, chain, **plan.planner_options)
    settings = UploadSettings(
        upload.chunk_bytes,
        upload.first_query,
        upload.after,
        context.timeout_s,
    )
    experiment = UploadExperiment(
        context.endpoint,
        context.keys,
        split,
        spec,
        chain,
        planned,
        settings,
        run.id,
        link=link.emulated,
        plan_label=plan.label,
        rate=link.rate,
    )
    count = 0
    for repeat in range(upload.repeats):
        if repeat in done:
            continue
        outcome = experiment.run(repeat, list(inputs))
        emit(
            {
                "run": run.id,
                "repeat": repeat,
                "partitions": as_rows(outcome.partitions),
                "queries": as_rows(outcome.queries),
            }
        )
        count += 1
    return count
