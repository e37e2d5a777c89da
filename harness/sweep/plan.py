"""The edge host's part of a sweep: run every run of the plan and stream its records.

The plan is the manifest's runs as JSON, shipped by the sweep playbook. Each record goes three
ways as soon as it exists: to the observer (the controller), to the local spool (``records.jsonl``,
collected afterwards, so a lost stream loses nothing) and to the caller. Failed inferences go the
same two first ways (``failures.jsonl``). A resumed sweep's plan lists the ``(cut, repeat)`` pairs
already recorded, which are skipped, and the runs whose per-layer timings are already kept.
"""

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import msgspec
import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.energy import EnergyMeter
from harness.errors import BadInput, HarnessError
from harness.manifest.matrix import Run
from harness.manifest.schema import RetrySpec
from harness.model import Granularity, SplitGraph, build_split_graph, load_model
from harness.model.profile import profile
from harness.model.user_code import user_function
from harness.partition import schedule
from harness.results import FailedInference, InferenceRecord
from harness.sweep.adapting import AdaptivePipeline, PlanAdapt
from harness.sweep.exit_runs import edge_exits, labelled, run_inputs
from harness.sweep.observer import LayerRow, LayersMessage, RecordSender
from harness.sweep.pipelines import Pipeline
from harness.sweep.upload_runs import UPLOADS_SPOOL, UploadContext, upload_repeats
from harness.wire import ClientKeys, Compression, CutCodec, ModelSpec
from harness.worker import EdgeDriver, LinkSettings, RetryPolicy, WorkerClient, sweep
from harness.worker.edge import EdgeExits, connect_pipeline


class PlanPipeline(BaseModel):
    """One pipeline of a run over tiers: the edge runs to ``cuts[0]``, worker host ``workers[i]`` from
    ``cuts[i]`` to the next cut (the last to the output). No workers: the edge runs the whole model."""

    model_config = ConfigDict(extra="forbid")

    label: str
    cuts: list[int]
    workers: list[str]


class Plan(BaseModel):
    """``done`` lists each run's ``(cut, repeat)`` pairs already recorded (``(pipeline, repeat)`` in a
    run over tiers); ``workers`` is each worker host's endpoint and ``pipelines`` each run's pipelines,
    for a sweep over tiers."""

    model_config = ConfigDict(extra="forbid")

    name: str
    runs: list[Run]
    retry: RetrySpec = RetrySpec()
    done: dict[str, list[tuple[int | str, int]]] = {}
    profiled: list[str] = []
    workers: dict[str, str] = {}
    pipelines: dict[str, list[PlanPipeline]] = {}
    adapt: dict[str, PlanAdapt] = {}
    """The runs that re-plan during the run: their one pipeline is where they start."""


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
    energy: EnergyMeter | None = None
    """This host's power source, for each record's ``edge_joules``."""


FAILURES_SPOOL = "failures.jsonl"
HOPS_SPOOL = "hops.jsonl"
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
    spools = _Spools(context.spool)
    retry = RetryPolicy(plan.retry.attempts, plan.retry.timeout_s, plan.retry.wait_s)
    graphs: dict[tuple, SplitGraph] = {}
    count = 0

    def failed(failure: FailedInference) -> None:
        spools.write("failures", failure.as_dict())
        sender.failure(failure)

    try:
        with contextlib.ExitStack() as stack:
            connections = _Connections(plan, context, stack)
            uploads = _Uploads(context, connections, plan, sender, spools)
            for run in plan.runs:
                if run.threads:
                    torch.set_num_threads(run.threads)
                split = _split_graph(run, graphs)
                fed = run_inputs(run, split)
                spec = ModelSpec(
                    name=run.model.name,
                    granularity=run.model.granularity,
                    input_shape=split.input_shape,
                    weights=run.model.weights,
                    classes=run.model.classes,
                )
                settings = _DriverSettings(
                    split,
                    spec,
                    Compression.parse(run.compression),
                    link_for(run, context.shaping),
                    retry,
                    run.id,
                    CutCodec.parse(run.codec),
                    context.energy,
                )
                pipelines = plan.pipelines.get(run.id)
                if run.upload is not None:
                    count += uploads.run(run, split, spec, settings, fed.inputs)
                    continue
                if run.exits is not None:
                    cut, exits = edge_exits(run, split)
                    driver = settings.driver(connections.worker(), exits)
                    units = [cut]
                    done = set(plan.done.get(run.id, ()))
                elif pipelines is None:
                    driver = settings.driver(connections.worker())
                    units = (
                        [cut.index for cut in split.cuts]
                        if run.cuts == "all"
                        else [split.cut(i).index for i in run.cuts]
                    )
                    done = set(plan.done.get(run.id, ()))
                elif run.id in plan.adapt:
                    adapt = plan.adapt[run.id]
                    start = Pipeline(adapt.hosts[0].name, tuple(pipelines[0].cuts), tuple(pipelines[0].workers))
                    driver = AdaptivePipeline(
                        adapt,
                        start,
                        lambda workers, settings=settings: settings.driver(connections.pipeline(workers)),
                        context.keys,
                        sender.replan,
                        settings.link,
                    )
                    units = [0]
                    done = {(0, repeat) for _, repeat in plan.done.get(run.id, ())}
                else:
                    driver = PipelineSet(
                        [settings.driver(connections.pipeline(pipeline.workers)) for pipeline in pipelines], pipelines
                    )
                    units = list(range(len(pipelines)))
                    done = {(driver.unit(label), repeat) for label, repeat in plan.done.get(run.id, ())}
                wanted = schedule(run.partitioner.name, units, run.partitioner.repeats)
                pairs = [pair for pair in wanted if pair not in done]
                task = per_input_task(run.task)
                sender.started(run.id, len(pairs))
                for record, output, hops in sweep(driver, pairs, fed.inputs, run.warmup, retry, failed):
                    hops = hops if pipelines is not None else []
                    record = labelled(record, output, fed.labels)
                    if task is not None:
                        record = replace(record, task=task(output, record.input))
                    spools.write("records", record.as_dict())
                    for hop in hops:
                        spools.write("hops", hop.as_dict())
                    sender.record(record, hops)
                    on_record(record)
                    count += 1
                if run.id not in plan.profiled:
                    workers = connections.profiled_workers(pipelines)
                    for message in layer_timings(run, split, spec, workers, context.host):
                        sender.layers(message)
        sender.ended()
        return count
    except HarnessError as error:
        sender.ended(str(error))
        raise
    finally:
        spools.close()
        sender.close()


@dataclass(frozen=True)
class _DriverSettings:
    """What every driver of one run shares, whichever workers it talks to."""

    split: SplitGraph
    spec: ModelSpec
    compression: Compression
    link: LinkSettings
    retry: RetryPolicy
    run: str
    codec: CutCodec
    energy: EnergyMeter | None

    def driver(self, hops: WorkerClient | list[WorkerClient], exits: EdgeExits | None = None) -> EdgeDriver:
        return EdgeDriver(
            hops,
            self.split,
            self.spec,
            self.compression,
            self.link,
            timeout_s=self.retry.timeout_s,
            run=self.run,
            exits=exits,
            codec=self.codec,
            energy=self.energy,
        )


class _Uploads:
    """The runs of a plan with an incremental upload: each profiled first (its plan is made from the
    profiles; runs of one model share them), then its repeats, every repeat spooled and streamed."""

    def __init__(self, context: EdgeContext, connections: "_Connections", plan: Plan, sender, spools: "_Spools"):
        self.context, self.connections, self.plan = context, connections, plan
        self.sender, self.spools = sender, spools
        self._profiles: dict[tuple[str, str], list[LayersMessage]] = {}

    def run(self, run: Run, split: SplitGraph, spec: ModelSpec, settings: "_DriverSettings", inputs) -> int:
        key = (run.model.model_dump_json(), self.context.worker)
        if key not in self._profiles:
            workers = self.connections.profiled_workers(None)
            self._profiles[key] = list(layer_timings(run, split, spec, workers, self.context.host))
        profiles = [message.model_copy(update={"run": run.id}) for message in self._profiles[key]]
        if run.id not in self.plan.profiled:
            for message in profiles:
                self.sender.layers(message)
        done = {repeat for _, repeat in self.plan.done.get(run.id, ())}
        self.sender.started(run.id, len(set(range(run.upload.repeats)) - done))
        where = UploadContext(self.context.worker, self.context.keys, settings.retry.timeout_s)
        return upload_repeats(run, split, spec, profiles, settings.link, where, inputs, done, self._emit)

    def _emit(self, row: dict) -> None:
        self.spools.write("uploads", row)
        self.sender.upload(row)


class _Connections:
    """The sockets of a plan, opened when first needed and closed with ``stack``: the one worker of
    the two-group form, and one set of clients per distinct chain of worker hosts (a pipeline's
    clients share one routing id, so they are not shared with another chain)."""

    def __init__(self, plan: Plan, context: EdgeContext, stack: contextlib.ExitStack):
        self.plan = plan
        self.context = context
        self.stack = stack
        self._worker: WorkerClient | None = None
        self._chains: dict[tuple[str, ...], list[WorkerClient]] = {}

    def worker(self) -> WorkerClient:
        if self._worker is None:
            self._worker = self.stack.enter_context(WorkerClient(self.context.worker, self.context.keys))
        return self._worker

    def pipeline(self, hosts: list[str]) -> list[WorkerClient]:
        chain = tuple(hosts)
        if not chain:
            return []
        if chain not in self._chains:
            missing = [host for host in chain if host not in self.plan.workers]
            if missing:
                raise BadInput(f"plan: no endpoint for worker host {', '.join(missing)}; expected it in 'workers'")
            clients = connect_pipeline([self.plan.workers[host] for host in chain], self.context.keys)
            for client in clients:
                self.stack.callback(client.close)
            self._chains[chain] = clients
        return self._chains[chain]

    def profiled_workers(self, pipelines: list[PlanPipeline] | None) -> list[tuple[str, str, WorkerClient]]:
        """The workers whose layers a run profiles, as (role, name, client): the worker of the
        two-group form (``cloud``, named by its endpoint; the controller knows its host), or each
        worker host of the run's pipelines once (``worker``, named by its host)."""
        if pipelines is None:
            client = self.worker()
            return [("cloud", client.endpoint, client)]
        found: dict[str, WorkerClient] = {}
        for pipeline in pipelines:
            for host, client in zip(pipeline.workers, self.pipeline(pipeline.workers), strict=True):
                found.setdefault(host, client)
        return [("worker", host, client) for host, client in found.items()]


class PipelineSet:
    """A run's pipelines behind the driver interface ``sweep`` uses, each pipeline a unit numbered
    in plan order; records and hops are labelled with the pipeline and named by host."""

    def __init__(self, drivers: list[EdgeDriver], pipelines: list[PlanPipeline]):
        self.drivers = drivers
        self.pipelines = pipelines
        self.run = drivers[0].run
        self.split = drivers[0].split
        self._current = 0

    def unit(self, label: str) -> int:
        return next(index for index, pipeline in enumerate(self.pipelines) if pipeline.label == label)

    def describe(self, unit: int) -> tuple[int, str]:
        pipeline = self.pipelines[unit]
        return (pipeline.cuts[0] if pipeline.cuts else self.split.cuts[-1].index), pipeline.label

    def prepare(self, unit: int) -> None:
        self._current = unit
        self.drivers[unit].prepare(self.pipelines[unit].cuts)

    def run_pipeline(self, unit: int, inputs: torch.Tensor, repeat: int = 0, input_index: int = 0):
        self._current = unit
        pipeline = self.pipelines[unit]
        output, record, hops = self.drivers[unit].run_pipeline(pipeline.cuts, inputs, repeat, input_index)
        named = [
            replace(hop, host=host, pipeline=pipeline.label, repeat=repeat)
            for hop, host in zip(hops, pipeline.workers, strict=True)
        ]
        return output, replace(record, pipeline=pipeline.label), named

    def await_worker(self, wait_s: float, after: Exception) -> None:
        self.drivers[self._current].await_worker(wait_s, after)


_SPOOL_NAMES = {"records": None, "failures": FAILURES_SPOOL, "hops": HOPS_SPOOL, "uploads": UPLOADS_SPOOL}


class _Spools:
    """The edge's local copies beside ``records.jsonl``: every record, failure and hop, a line each,
    flushed as written, collected after the sweep."""

    def __init__(self, records: Path | None):
        self.files = {}
        if records is not None:
            self.files = {
                kind: (records if name is None else records.with_name(name)).open("a")
                for kind, name in _SPOOL_NAMES.items()
            }

    def write(self, kind: str, row: dict) -> None:
        file = self.files.get(kind)
        if file is not None:
            file.write(json.dumps(row) + "\n")
            file.flush()

    def close(self) -> None:
        for file in self.files.values():
            file.close()


PROFILE_REPEATS = 10
PROFILE_WARMUP = 3
"""Per-layer timings are a profile of the whole model on each host, after the run's inferences."""


def layer_timings(
    run: Run, split: SplitGraph, spec: ModelSpec, workers: list[tuple[str, str, WorkerClient]], host: str
):
    """The run's model timed layer by layer here (edge) and on each of ``workers``."""
    here = profile(split, None, PROFILE_REPEATS, PROFILE_WARMUP).layers
    edge_rows = [
        LayerRow(name=layer.name, op=layer.op, median_ns=round(layer.median_ms * 1e6), p95_ns=round(layer.p95_ms * 1e6))
        for layer in here
    ]
    timed = [("edge", host, edge_rows)]
    for role, name, client in workers:
        there = client.profile(spec, PROFILE_REPEATS, PROFILE_WARMUP).layers
        timed.append((role, name, [LayerRow(**msgspec.structs.asdict(layer)) for layer in there]))
    for role, name, rows in timed:
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
    key = (run.model.name, run.model.weights, run.model.classes, run.model.granularity, shape, run.model.single_tensor)
    if key not in graphs:
        loaded = load_model(run.model.name, run.model.weights, run.model.classes)
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
