"""The edge host's part of a sweep: run every run of the plan and stream its records.

The plan is the manifest's runs as JSON, shipped by the sweep playbook. Each record goes three
ways as soon as it exists: to the observer (the controller), to the local spool (``records.jsonl``,
collected afterwards, so a lost stream loses nothing) and to the caller. Failed inferences go the
same two first ways (``failures.jsonl``). A resumed sweep's plan lists the ``(cut, repeat)`` pairs
already recorded, which are skipped, and the runs whose per-layer timings are already kept.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import msgspec
import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import BadInput, HarnessError
from harness.manifest.matrix import Run
from harness.manifest.schema import RetrySpec
from harness.model import Granularity, SplitGraph, build_split_graph, load_model
from harness.model.datasets import load_inputs
from harness.model.profile import profile
from harness.model.user_code import user_function
from harness.partition import schedule
from harness.results import FailedInference, InferenceRecord
from harness.sweep.observer import LayerRow, LayersMessage, RecordSender
from harness.wire import ClientKeys, Compression, ModelSpec
from harness.worker import EdgeDriver, LinkSettings, RetryPolicy, WorkerClient, sweep


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    runs: list[Run]
    retry: RetrySpec = RetrySpec()
    done: dict[str, list[tuple[int, int]]] = {}
    profiled: list[str] = []


def read_plan(path: Path) -> Plan:
    try:
        return Plan.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise BadInput(f"plan {path} does not exist") from None
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadInput(f"plan {path}: field {where}: {first['msg']}") from None


@dataclass
class EdgeContext:
    """Where this edge host sends tails and records, and how its link is shaped."""

    worker: str
    observer: str
    host: str
    shaping: str = "emulated"
    keys: ClientKeys | None = None
    spool: Path | None = None
    observer_keys: ClientKeys | None = None


FAILURES_SPOOL = "failures.jsonl"
"""Beside the records' spool on the edge host, collected with it."""


def link_for(run: Run, host_shaping: str) -> LinkSettings:
    """The link a run asks for, as this host can give it: ``auto`` takes the host's own shaping."""
    wanted = host_shaping if run.link.shaping == "auto" else run.link.shaping
    if wanted == "tc" and host_shaping != "tc":
        raise BadInput(
            f"run {run.id} asks for tc shaping, but this edge host shapes its link by {host_shaping} "
            "(the inventory's harness_link_shaping)"
        )
    return LinkSettings(wanted, run.link.rate_bytes, run.link.delay_ns)


def run_plan(plan: Plan, context: EdgeContext, on_record: Callable[[InferenceRecord], None] = lambda _: None) -> int:
    """Run every run of ``plan``; returns the number of records made. Failures are reported to the
    observer before they are raised, so the controller can say which host failed and why."""
    sender = RecordSender(context.observer, context.host, keys=context.observer_keys)
    spool = context.spool.open("a") if context.spool else None
    failures = context.spool.with_name(FAILURES_SPOOL).open("a") if context.spool else None
    retry = RetryPolicy(plan.retry.attempts, plan.retry.timeout_s, plan.retry.wait_s)
    graphs: dict[tuple, SplitGraph] = {}
    count = 0

    def failed(failure: FailedInference) -> None:
        if failures:
            failures.write(json.dumps(failure.as_dict()) + "\n")
            failures.flush()
        sender.failure(failure)

    try:
        with WorkerClient(context.worker, context.keys) as client:
            for run in plan.runs:
                if run.threads:
                    torch.set_num_threads(run.threads)
                split = _split_graph(run, graphs)
                cuts = (
                    [cut.index for cut in split.cuts] if run.cuts == "all" else [split.cut(i).index for i in run.cuts]
                )
                inputs = load_inputs(run.dataset, split.input_shape)
                spec = ModelSpec(
                    name=run.model.name,
                    granularity=run.model.granularity,
                    input_shape=split.input_shape,
                    weights=run.model.weights,
                )
                driver = EdgeDriver(
                    client,
                    split,
                    spec,
                    Compression.parse(run.compression),
                    link_for(run, context.shaping),
                    timeout_s=retry.timeout_s,
                    run=run.id,
                )
                done = set(plan.done.get(run.id, ()))
                wanted = schedule(run.partitioner.name, cuts, run.partitioner.repeats)
                pairs = [pair for pair in wanted if pair not in done]
                task = per_input_task(run.task)
                sender.started(run.id, len(pairs))
                for record, output, _ in sweep(driver, pairs, inputs, run.warmup, retry, failed):
                    if task is not None:
                        record = replace(record, task=task(output, record.input))
                    if spool:
                        spool.write(json.dumps(record.as_dict()) + "\n")
                        spool.flush()
                    sender.record(record)
                    on_record(record)
                    count += 1
                if run.id not in plan.profiled:
                    for message in layer_timings(run, split, spec, client, context.host):
                        sender.layers(message)
        sender.ended()
        return count
    except HarnessError as error:
        sender.ended(str(error))
        raise
    finally:
        for file in (spool, failures):
            if file:
                file.close()
        sender.close()


PROFILE_REPEATS = 10
PROFILE_WARMUP = 3
"""Per-layer timings are a profile of the whole model on each host, after the run's inferences."""


def layer_timings(run: Run, split: SplitGraph, spec: ModelSpec, client: WorkerClient, host: str):
    """The run's model timed layer by layer here (edge) and on the worker (cloud)."""
    here = profile(split, None, PROFILE_REPEATS, PROFILE_WARMUP).layers
    edge_rows = [
        LayerRow(name=layer.name, op=layer.op, median_ns=round(layer.median_ms * 1e6), p95_ns=round(layer.p95_ms * 1e6))
        for layer in here
    ]
    there = client.profile(spec, PROFILE_REPEATS, PROFILE_WARMUP).layers
    cloud_rows = [LayerRow(**msgspec.structs.asdict(layer)) for layer in there]
    for role, rows, name in (("edge", edge_rows, host), ("cloud", cloud_rows, client.endpoint)):
        yield LayersMessage(
            host=name, role=role, run=run.id, model=run.model.name, repeats=PROFILE_REPEATS, layers=rows
        )


def per_input_task(name: str | None) -> Callable[[object, int], str] | None:
    """The manifest's ``task``: ``function(output, input_index) -> dict`` of numbers or text, recorded
    as JSON beside the timings (top-1 class, a detection count, an accuracy flag)."""
    if name is None:
        return None
    function = user_function("task", name)

    def run(output, input_index: int) -> str:
        result = function(output, input_index)
        if not isinstance(result, dict) or not all(
            isinstance(key, str) and isinstance(value, int | float | str | bool) for key, value in result.items()
        ):
            raise BadInput(f"task '{name}' returned {type(result).__name__}; expected a dict of numbers or text")
        return json.dumps(result, sort_keys=True)

    return run


def _split_graph(run: Run, graphs: dict[tuple, SplitGraph]) -> SplitGraph:
    shape = tuple(run.model.input_shape) if run.model.input_shape else None
    key = (run.model.name, run.model.weights, run.model.granularity, shape, run.model.single_tensor)
    if key not in graphs:
        loaded = load_model(run.model.name, run.model.weights)
        graphs[key] = build_split_graph(
            loaded, Granularity.parse(run.model.granularity), shape, single_tensor_only=run.model.single_tensor
        )
    return graphs[key]


class PidFile:
    """This process's id in a file while it runs, so a teardown can stop a sweep left behind."""

    def __init__(self, path: Path | None):
        self.path = path

    def __enter__(self):
        if self.path:
            self.path.write_text(f"{os.getpid()}\n")
        return self

    def __exit__(self, *exc_info):
        if self.path:
            self.path.unlink(missing_ok=True)
