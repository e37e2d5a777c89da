"""``harness sweep``: from a manifest to a results folder, through Ansible, tearing down always.

The manifest is rendered, validated and expanded, and the inventory checked, before anything
starts. Then ``playbooks/site.yml`` provisions, shapes, deploys, runs the plan on the edge hosts
and collects, with its teardown in an ``always`` block; meanwhile records stream in from the edge
and are written one row at a time. Ctrl-C cancels the playbook, then collects and tears down.
Records the stream missed are recovered from the edge's spool once it is collected. However a
sweep stops, ``--resume`` continues it in the same folder (see ``harness.sweep.resume``).

Off loopback (a lab) each sweep makes its own keys in a temporary directory, which the playbook
ships to the hosts and tears down again; the record stream then binds the observer host's address
with the observer's keys. Under ``tc`` the runs go in groups by link, each group's link shaped
before its runs.
"""

import json
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console

from harness.ansible.inventory import check_groups, inventory_groups
from harness.ansible.runner import PlaybookResult, run_playbook
from harness.errors import BadInput, ExperimentFailed, HarnessError
from harness.exits.manifest import check_sweepable, with_trained_plans
from harness.exits.trained import keep_trained, trained_root
from harness.links.observed import write_links_after
from harness.manifest import LoadedManifest, load_manifest
from harness.manifest.cuts import check_models
from harness.partition.evaluate import judge_sweep
from harness.partition.placement.instance import tier_hosts
from harness.partition.placement.judged import judge_placements
from harness.results import FailedInference, InferenceRecord, RecordWriter, ResultsFolder, build_report, write_layers
from harness.results.records import HopRecord
from harness.results.uploads import PartitionRecord, QueryRecord
from harness.results.writer import append_failures, append_replans, write_hops, write_records
from harness.sweep.environment import environment
from harness.sweep.failure import failed_sweep_message, resume_hint
from harness.sweep.keys import CLOUD_FILES, EDGE_FILES, shipped_keys, sweep_keys
from harness.sweep.lock import lock_variables
from harness.sweep.observer import (
    LayersMessage,
    PlanEnded,
    Received,
    RecordReceiver,
    ReplanMessage,
    RunStarted,
    UploadRepeat,
    upload_repeat,
)
from harness.sweep.pipelines import SweepPipelines, choose_pipelines, pipeline_places
from harness.sweep.plan import FAILURES_SPOOL, HOPS_SPOOL
from harness.sweep.power import check_power_sources
from harness.sweep.progress import SweepProgress
from harness.sweep.resume import (
    Recorded,
    RecordKey,
    check_resumable,
    failure_key,
    record_key,
    recorded,
    recover,
    upload_key,
)
from harness.sweep.shipping import shipment
from harness.sweep.topology import Topology, topology, worker_address
from harness.sweep.upload_runs import UPLOADS_SPOOL
from harness.wire.keys import OBSERVER, worker_keys
from harness.wire.sockets import is_loopback, loopback_address

RESULTS_ROOT = Path("results")


class Interrupted(HarnessError):
    """Ctrl-C: the hosts were torn down and what was recorded is kept."""

    exit_code = 130


@dataclass
class SweepOutcome:
    folder: ResultsFolder
    records: int
    expected: int
    reports: list[Path]


def prepare(manifest: Path, inventory: Path, sets: list[str]) -> LoadedManifest:
    """Everything that can be checked without starting anything; raises ``BadInput``."""
    loaded = load_manifest(manifest, sets)
    check_models(loaded)
    check_sweepable(loaded)
    loaded = with_trained_plans(loaded)
    topology(inventory, loaded)
    return loaded


def playbook_variables(loaded: LoadedManifest, observer: str = "", results: Path | None = None) -> dict:
    manifest = loaded.manifest
    shipped = shipment(loaded)
    runs = []
    for run in loaded.runs:
        dumped = run.model_dump(mode="json")
        dumped["model"]["weights"] = shipped.host_path(run.model.weights)
        if run.exits is not None:
            dumped["exit_weights"] = shipped.host_path(run.exit_weights)
            dumped["exits"]["template"] = shipped.host_path(run.exits.template)
        runs.append(dumped)
    variables = {
        "harness_edge_group": manifest.hosts.edge,
        "harness_cloud_group": manifest.hosts.cloud,
        "harness_worker_port": manifest.worker.port,
        "harness_worker_device": manifest.worker.device,
        "harness_worker_energy": manifest.energy.cloud,
        "harness_edge_energy": manifest.energy.edge,
        "harness_worker_threads": manifest.threads or 0,
        "harness_plan": {
            "name": manifest.name,
            "runs": runs,
            "retry": manifest.retry.model_dump(mode="json"),
        },
        "harness_observer": observer,
        "harness_results": str(results.resolve()) if results else "",
        "harness_weights": shipped.files,
    }
    variables |= lock_variables(manifest.name, results)
    return variables


def secure_variables(places: Topology, keys: Path | None) -> dict:
    """What the playbook needs off loopback: where the keys are here and which files each host gets,
    and the runs by the link they go over, which the edge shapes by tc in turn."""
    variables: dict = {}
    if keys is not None:
        variables |= {
            "harness_keys_source": str(keys),
            "harness_keys_cloud_files": list(CLOUD_FILES),
            "harness_keys_edge_files": list(EDGE_FILES),
        }
    variables["harness_link_groups"] = [group.variables() for group in places.link_groups]
    return variables


def pipeline_variables(
    inventory: Path, loaded: LoadedManifest, source: str, workers: list[str], next_hops: dict[str, list[str]]
) -> dict:
    """What the playbook needs to run on a pipeline's hosts: the source (which runs the edge's
    plan) and every worker host, each worker's port and the peers it may forward to."""
    endpoints = pipeline_places(inventory, workers, loaded.manifest.worker.port)
    return {
        "harness_pipelined": True,
        "harness_sweep_hosts": ",".join(dict.fromkeys([source, *workers])),
        "harness_drivers": [source],
        "harness_workers": {host: int(endpoint.rpartition(":")[2]) for host, endpoint in endpoints.items()},
        "harness_worker_peers": {host: [endpoints[peer] for peer in next_hops.get(host, [])] for host in workers},
    }


def sweep_pipeline_variables(inventory: Path, loaded: LoadedManifest, chosen: SweepPipelines) -> dict:
    """``pipeline_variables`` for the chosen pipelines, and the plan's part: each worker host's
    endpoint and each run's pipelines, which the edge runs."""
    variables = pipeline_variables(inventory, loaded, chosen.source, chosen.workers, chosen.next_hops())
    endpoints = pipeline_places(inventory, chosen.workers, loaded.manifest.worker.port)
    pipelines = {
        run: [
            {"label": pipeline.label, "cuts": list(pipeline.cuts), "workers": list(pipeline.workers)}
            for pipeline in pipelines
        ]
        for run, pipelines in chosen.runs.items()
    }
    return variables | {"plan": {"workers": endpoints, "pipelines": pipelines, "adapt": chosen.adapt}}


def tier_variables(inventory: Path, loaded: LoadedManifest) -> dict:
    """``pipeline_variables`` for a phase run on its own (deploy, teardown) over tiers, where no
    pipeline is chosen: the first host of the first tier as source, every host of a later tier a
    worker that may forward to every host of the tiers after its own; where runs re-plan, every
    host a worker, as the sweep deploys them (so a teardown stops them all)."""
    hosts = tier_hosts(inventory, loaded.manifest.hosts.pipeline)
    adapting = loaded.manifest.adapt is not None
    workers = [host for host in hosts if adapting or host.tier > 0]
    next_hops = {
        host.name: [other.name for other in workers if other.tier > host.tier or (adapting and other != host)]
        for host in workers
    }
    return pipeline_variables(inventory, loaded, hosts[0].name, [host.name for host in workers], next_hops)


def _pipelines(loaded: LoadedManifest, inventory: Path, folder: ResultsFolder, resuming: bool) -> SweepPipelines:
    """The pipelines of a sweep over tiers: chosen now and kept in the folder, or on ``--resume``
    those the stopped sweep chose."""
    if resuming:
        return SweepPipelines.read(folder.pipelines)
    chosen = choose_pipelines(loaded, inventory)
    chosen.write(folder.pipelines)
    return chosen


class RecordCollector:
    """What arrives from the edge hosts: each record written once, the expected count, failed
    inferences, failed plans, per-layer timings and pipelines' hops. A record is known by its run,
    cut (or pipeline) and repeat, so the spool can fill gaps and a resumed sweep never records an
    inference twice."""

    def __init__(self, writer: RecordWriter, progress: SweepProgress, cloud_host: str, recorded: Recorded):
        self.writer = writer
        self.progress = progress
        self.cloud_host = cloud_host
        self.seen: set[RecordKey] = set(recorded.keys)
        self.expected = len(recorded.keys)
        self.failures: list[str] = []
        self.failed: dict[tuple, FailedInference] = {}
        self.failures_written = set(recorded.failure_keys)
        self.layer_rows: list[dict] = list(recorded.layer_rows)
        self.hops: list[HopRecord] = list(recorded.hops)
        self.partitions = list(recorded.partitions)
        self.queries = list(recorded.queries)
        self.replans: list[dict] = []

    def take(self, items: list[Received]) -> None:
        for item in items:
            message = item.message
            if item.record is not None:
                self.add(item.record, item.hops)
            elif item.upload is not None:
                self.add_upload(item.upload)
            elif item.failure is not None:
                self.add_failure(item.failure)
            elif isinstance(message, LayersMessage):
                self.layer_rows.extend(layer_table_rows(message, self.cloud_host))
            elif isinstance(message, ReplanMessage):
                self.replans.append(message.model_dump(exclude={"kind", "host"}))
                if message.switched:
                    self.progress.note = f"{message.run}: switched to {message.best} ({message.reason})"
            elif isinstance(message, RunStarted):
                self.expected += message.expected
                self.progress.expect(message.expected)
            elif isinstance(message, PlanEnded) and message.kind == "failed":
                self.failures.append(f"host {message.host}: {message.message}")
            elif item.problem:
                self.progress.note = f"a message from the edge was refused ({item.problem}); its spool will be read"

    def add(self, record: InferenceRecord, hops: list[HopRecord]) -> None:
        key = record_key(record.run, record.cut, record.pipeline, record.repeat)
        if key not in self.seen:
            self.seen.add(key)
            self.writer.append(record)
            self.hops.extend(hops)
            self.progress.recorded(record)

    def add_upload(self, upload: UploadRepeat) -> None:
        key = upload_key(upload.run, upload.repeat)
        if key not in self.seen:
            self.seen.add(key)
            self.partitions.extend(upload.partitions)
            self.queries.extend(upload.queries)
            self.progress.uploaded(upload)

    def add_spooled(self, results: Path) -> None:
        """What the edge hosts spooled, as collected into ``hosts/<host>/``: the gaps the stream left."""
        hops: dict[RecordKey, list[HopRecord]] = {}
        for line in _spool_lines(results, HOPS_SPOOL):
            hop = HopRecord(**json.loads(line))
            hops.setdefault(record_key(hop.run, -1, hop.pipeline, hop.repeat), []).append(hop)
        for line in _spool_lines(results, "records.jsonl"):
            record = InferenceRecord(**json.loads(line))
            self.add(record, hops.get(record_key(record.run, record.cut, record.pipeline, record.repeat), []))
        for line in _spool_lines(results, FAILURES_SPOOL):
            self.add_failure(FailedInference(**json.loads(line)))
        for line in _spool_lines(results, UPLOADS_SPOOL):
            self.add_upload(upload_repeat(json.loads(line)))

    def add_failure(self, failure: FailedInference) -> None:
        key = failure_key(failure)
        if key not in self.failed and key not in self.failures_written:
            self.failed[key] = failure
            self.progress.note = f"cut {failure.cut}, repeat {failure.repeat} failed ({failure.error}); retrying"


def run_sweep(
    loaded: LoadedManifest, inventory: Path, out: Path | None, console: Console, resume: Path | None = None
) -> SweepOutcome:
    """A sweep into ``out`` (or a new timestamped folder); with ``resume``, the rest of the sweep
    that wrote that folder."""
    from harness.results.catalog import Catalog

    check_power_sources(inventory, loaded)
    if resume is not None:
        folder = ResultsFolder.open(resume)
        check_resumable(folder, loaded)
    else:
        folder = ResultsFolder(out) if out else ResultsFolder.timestamped(RESULTS_ROOT, loaded.manifest.name)
        folder.write_manifest(loaded.rendered.text)
        _keep_trained(loaded, folder)
    places = topology(inventory, loaded)
    catalog = Catalog(folder.path.parent)
    origin = {"manifest_path": str(loaded.rendered.path), "inventory": str(inventory)}
    keys = None
    try:
        chosen = _pipelines(loaded, inventory, folder, resume is not None) if loaded.manifest.pipelined else None
        extra = sweep_pipeline_variables(inventory, loaded, chosen) if chosen is not None else {}
        workers = extra.get("plan", {}).get("workers", {})
        if places.needs_keys or not all(is_loopback(endpoint) for endpoint in workers.values()):
            keys = sweep_keys(Path(tempfile.mkdtemp(prefix="harness-keys-")))
        outcome = _sweep(loaded, inventory, folder, console, places, keys, resume is not None, extra, chosen)
    except HarnessError as error:
        catalog.register(folder.path, status="interrupted" if isinstance(error, Interrupted) else "failed", **origin)
        raise
    finally:
        if keys is not None:
            shutil.rmtree(keys, ignore_errors=True)
    catalog.register(folder.path, status="ok", expected=outcome.expected, **origin)
    return outcome


def _keep_trained(loaded: LoadedManifest, folder: ResultsFolder) -> None:
    exits = loaded.manifest.exits
    if exits is None:
        return
    root = trained_root(loaded.manifest.name, exits.trained)
    for model in loaded.manifest.model:
        for placement in exits.placement:
            keep_trained(root, model.name, placement, folder.trained)


def _sweep(
    loaded: LoadedManifest,
    inventory: Path,
    folder: ResultsFolder,
    console: Console,
    places: Topology,
    keys: Path | None,
    resuming: bool,
    extra: dict,
    chosen: SweepPipelines | None,
) -> SweepOutcome:
    cloud_host = places.cloud_host
    receiver = RecordReceiver(places.observer_endpoint, worker_keys(keys, OBSERVER) if keys else None)
    variables = playbook_variables(loaded, receiver.endpoint, folder.path) | secure_variables(places, keys)
    variables["harness_sweep_id"] = folder.sweep_id
    variables |= {name: value for name, value in extra.items() if name != "plan"}
    variables["harness_plan"] |= extra.get("plan", {})
    if resuming:
        recover(inventory, variables)
    cancel = threading.Event()
    outcome: dict[str, PlaybookResult] = {}
    progress = SweepProgress(console)
    with RecordWriter(folder, resume=resuming) as writer:
        already = recorded(folder) if resuming else Recorded()
        collector = RecordCollector(writer, progress, cloud_host, already)
        collector.add_spooled(folder.path)
        already.keys = set(collector.seen)
        collector.expected = len(collector.seen)
        variables["harness_plan"] |= already.plan()

        def site() -> None:
            outcome["site"] = run_playbook("site", inventory, variables, progress.on_event, cancel.is_set)

        playbook = threading.Thread(target=site)
        with progress:
            playbook.start()
            stopped = _follow(playbook, receiver, collector, cancel)
            if not isinstance(stopped, OSError):
                collector.take(receiver.receive(0))
            if stopped is not None:
                keep_spools = {"harness_keep_spool": isinstance(stopped, OSError)}
                run_playbook("recover", inventory, variables | keep_spools, progress.on_event)
        receiver.close()
        if isinstance(stopped, OSError):
            raise _cannot_write(folder, stopped, during_sweep=True) from None
        try:
            collector.add_spooled(folder.path)
            writer.close()
        except OSError as error:
            raise _cannot_write(folder, error, during_sweep=True) from None
    count = len(collector.seen)
    interrupted = stopped is not None
    try:
        if collector.layer_rows:
            folder.layers.unlink(missing_ok=True)
            write_layers(folder, collector.layer_rows)
        write_hops(folder, collector.hops)
        write_records(folder.uploads, collector.partitions, PartitionRecord)
        write_records(folder.queries, collector.queries, QueryRecord)
        append_replans(folder, collector.replans)
        append_failures(folder, list(collector.failed.values()))
        folder.write_environment(environment(folder.path, inventory))
        problems = judge(loaded, folder, chosen) if count and not interrupted else []
        reports = build_report(folder.path) if count else []
    except OSError as error:
        raise _cannot_write(folder, error, during_sweep=False) from None
    again = resume_hint(folder.path)
    if interrupted:
        raise Interrupted(f"interrupted: hosts torn down; {count} records kept in {folder.path}; {again}")
    result = outcome["site"]
    if not result.ok:
        message = failed_sweep_message(result, collector.failures, count, folder.path, inventory, loaded.rendered.path)
        raise ExperimentFailed(message)
    if count != collector.expected:
        raise ExperimentFailed(f"sweep recorded {count} of {collector.expected} inferences; see {folder.path}; {again}")
    if problems:
        raise ExperimentFailed(f"{problems[0]}; {count} records kept in {folder.path}")
    return SweepOutcome(folder, count, collector.expected, reports)


def _cannot_write(folder: ResultsFolder, error: OSError, during_sweep: bool) -> ExperimentFailed:
    """A full (or read-only) disk here: say what is safe where, and the command that finishes the job.
    While the sweep runs, the hosts are torn down but keep their spools, which ``--resume`` collects."""
    if during_sweep:
        return ExperimentFailed(
            f"cannot write to {folder.path} ({error.strerror or error}): the sweep was stopped and its hosts torn "
            f"down, keeping their spools; the records written so far are in {folder.records_csv}, the rest in the "
            f"spools; free space, then `harness sweep ... --resume {folder.path}` collects them and runs what is left"
        )
    return ExperimentFailed(
        f"cannot write to {folder.path} ({error.strerror or error}) after the sweep: its records are in "
        f"{folder.records_csv}; free space, then `harness report {folder.path}` makes the summary, charts and report"
    )


def _follow(
    playbook: threading.Thread, receiver: RecordReceiver, collector: RecordCollector, cancel: threading.Event
) -> str | OSError | None:
    """Write records as they come until the playbook ends; None then. On Ctrl-C, or when this host
    cannot write (a full disk), cancel the playbook and say why it stopped."""
    stopped: str | OSError | None = None
    try:
        while playbook.is_alive():
            collector.take(receiver.receive(200))
    except KeyboardInterrupt:
        stopped = "interrupted"
        collector.progress.note = "interrupted: stopping the playbook, then tearing down"
    except OSError as error:
        stopped = error
        collector.progress.note = f"cannot write records ({error.strerror or error}): stopping, keeping the spools"
    if stopped is not None:
        cancel.set()
        playbook.join()
    return stopped


def judge(loaded: LoadedManifest, folder: ResultsFolder, chosen: SweepPipelines | None) -> list[str]:
    """The manifest's ``evaluate`` partitioners judged on the records, or over tiers every strategy's
    pipeline beside what it measured; what went wrong, if anything. A partitioner that cannot decide
    fails the sweep after its records and report are written."""
    if chosen is not None:
        judge_placements(folder, [asdict(choice) for choice in chosen.choices])
        write_links_after(folder, {run.id: (run.link.rate_bytes, run.link.delay_ns / 1e9) for run in loaded.runs})
        return []
    wanted = [spec.model_dump(exclude_none=True) for spec in loaded.manifest.evaluate]
    if not wanted:
        return []
    try:
        judge_sweep(folder, loaded.runs, wanted, loaded.manifest.choose_codec)
    except HarnessError as error:
        return [f"evaluating partitioners failed: {error}"]
    return []


def layer_table_rows(message: LayersMessage, cloud_host: str) -> list[dict]:
    """Rows of layers.parquet; cloud figures are named by the inventory's cloud host, not its endpoint."""
    host = cloud_host if message.role == "cloud" else message.host
    return [
        {
            "host": host,
            "role": message.role,
            "run": message.run,
            "model": message.model,
            "layer": layer.name,
            "op": layer.op,
            "median_ns": layer.median_ns,
            "p95_ns": layer.p95_ns,
            "repeats": message.repeats,
        }
        for layer in message.layers
    ]


def _spool_lines(results: Path, name: str):
    """Complete lines of each host's collected spool: a host stopped mid-write leaves half a line."""
    for spool in sorted(results.glob(f"hosts/*/{name}")):
        for line in spool.read_text().splitlines(keepends=True):
            if line.strip() and line.endswith("\n"):
                yield line


def run_phase(
    name: str, inventory: Path, loaded: LoadedManifest | None, extra: dict, keys: Path | None = None
) -> PlaybookResult:
    """One playbook on its own (provision, deploy, teardown); raises with the first failure.

    Keys are the user's here (``harness keys gen``), not made per run as a sweep's are: workers
    deployed on their own outlive the command, and the user's edge needs the same keys to reach them.
    """
    groups = inventory_groups(inventory)
    hosts = loaded.manifest.hosts if loaded else None
    wanted = {"edge": hosts.edge, "cloud": hosts.cloud} if hosts else {"edge": "edge", "cloud": "cloud"}
    check_groups(inventory, groups, wanted)
    variables = (
        playbook_variables(loaded)
        if loaded
        else {"harness_edge_group": wanted["edge"], "harness_cloud_group": wanted["cloud"]}
    )
    if loaded is not None and loaded.manifest.pipelined:
        variables |= tier_variables(inventory, loaded)
    if keys is not None:
        variables |= shipped_keys(keys)
    elif name == "deploy" and not loopback_address(address := worker_address(inventory, wanted["cloud"])):
        raise BadInput(
            f"deploy on {inventory}: the worker would listen on {address}, off loopback, where it refuses to "
            "start without keys; make them with `harness keys gen DIR` and pass --keys DIR to provision and deploy"
        )
    result = run_playbook(name, inventory, {**variables, **extra})
    if not result.ok:
        reason = str(result.failures[0]) if result.failures else f"status {result.status}, rc {result.rc}"
        raise ExperimentFailed(f"{name} failed: {reason}")
    return result
