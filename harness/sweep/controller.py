"""``harness sweep``: from a manifest to a results folder, through Ansible, tearing down always.

The manifest is rendered, validated and expanded, and the inventory checked, before anything
starts. Then ``playbooks/site.yml`` provisions, shapes, deploys, runs the plan on the edge hosts
and collects, with its teardown in an ``always`` block; meanwhile records stream in from the edge
and are written one row at a time. Ctrl-C cancels the playbook and runs the teardown playbook.
Records the stream missed are recovered from the edge's spool once it is collected.

Off loopback (a lab) each sweep makes its own keys in a temporary directory, which the playbook
ships to the hosts and tears down again; the record stream then binds the observer host's address
with the observer's keys, and a ``tc`` link is shaped to the one link the runs ask for.
"""

import json
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from harness.ansible.inventory import check_groups, inventory_groups
from harness.ansible.runner import PlaybookResult, run_playbook
from harness.errors import BadInput, ExperimentFailed, HarnessError
from harness.manifest import LoadedManifest, load_manifest
from harness.partition.evaluate import judge_sweep
from harness.results import InferenceRecord, RecordWriter, ResultsFolder, build_report, write_layers
from harness.sweep.environment import environment
from harness.sweep.keys import CLOUD_FILES, EDGE_FILES, shipped_keys, sweep_keys
from harness.sweep.observer import LayersMessage, PlanEnded, Received, RecordReceiver, RunStarted
from harness.sweep.progress import SweepProgress
from harness.sweep.topology import Topology, topology, worker_address
from harness.wire.keys import OBSERVER, worker_keys
from harness.wire.sockets import loopback_address

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
    topology(inventory, loaded)
    return loaded


def playbook_variables(loaded: LoadedManifest, observer: str = "", results: Path | None = None) -> dict:
    manifest = loaded.manifest
    variables = {
        "harness_edge_group": manifest.hosts.edge,
        "harness_cloud_group": manifest.hosts.cloud,
        "harness_worker_port": manifest.worker.port,
        "harness_worker_device": manifest.worker.device,
        "harness_worker_threads": manifest.threads or 0,
        "harness_links": [run.link.model_dump(mode="json") for run in loaded.runs],
        "harness_plan": {"name": manifest.name, "runs": [run.model_dump(mode="json") for run in loaded.runs]},
        "harness_observer": observer,
        "harness_results": str(results.resolve()) if results else "",
    }
    return variables


def secure_variables(places: Topology, keys: Path | None) -> dict:
    """What the playbook needs off loopback: where the keys are here and which files each host gets,
    and the tc link (rate and delay) when the edge shapes by tc."""
    variables: dict = {}
    if keys is not None:
        variables |= {
            "harness_keys_source": str(keys),
            "harness_keys_cloud_files": list(CLOUD_FILES),
            "harness_keys_edge_files": list(EDGE_FILES),
        }
    if places.tc_link is not None:
        variables |= {"harness_tc_rate": places.tc_link.rate, "harness_tc_delay_ms": places.tc_link.delay_ms}
    return variables


class RecordCollector:
    """What arrives from the edge hosts: each record written once, the expected count, failures and
    per-layer timings. A record is known by its run and request id, so the spool can fill gaps."""

    def __init__(self, writer: RecordWriter, progress: SweepProgress, cloud_host: str):
        self.writer = writer
        self.progress = progress
        self.cloud_host = cloud_host
        self.seen: set[tuple[str, int]] = set()
        self.expected = 0
        self.failures: list[str] = []
        self.layer_rows: list[dict] = []

    def take(self, items: list[Received]) -> None:
        for item in items:
            message = item.message
            if item.record is not None:
                self.add(item.record)
            elif isinstance(message, LayersMessage):
                self.layer_rows.extend(layer_table_rows(message, self.cloud_host))
            elif isinstance(message, RunStarted):
                self.expected += message.expected
                self.progress.expect(message.expected)
            elif isinstance(message, PlanEnded) and message.kind == "failed":
                self.failures.append(f"host {message.host}: {message.message}")
            elif item.problem:
                self.progress.note = f"a message from the edge was refused ({item.problem}); its spool will be read"

    def add(self, record: InferenceRecord) -> None:
        if (record.run, record.request) not in self.seen:
            self.seen.add((record.run, record.request))
            self.writer.append(record)
            self.progress.recorded(record)


def run_sweep(loaded: LoadedManifest, inventory: Path, out: Path | None, console: Console) -> SweepOutcome:
    folder = ResultsFolder(out) if out else ResultsFolder.timestamped(RESULTS_ROOT, loaded.manifest.name)
    folder.write_manifest(loaded.rendered.text)
    places = topology(inventory, loaded)
    keys = sweep_keys(Path(tempfile.mkdtemp(prefix="harness-keys-"))) if places.needs_keys else None
    try:
        return _sweep(loaded, inventory, folder, console, places, keys)
    finally:
        if keys is not None:
            shutil.rmtree(keys, ignore_errors=True)


def _sweep(
    loaded: LoadedManifest,
    inventory: Path,
    folder: ResultsFolder,
    console: Console,
    places: Topology,
    keys: Path | None,
) -> SweepOutcome:
    cloud_host = places.cloud_host
    receiver = RecordReceiver(places.observer_endpoint, worker_keys(keys, OBSERVER) if keys else None)
    variables = playbook_variables(loaded, receiver.endpoint, folder.path) | secure_variables(places, keys)
    cancel = threading.Event()
    outcome: dict[str, PlaybookResult] = {}
    progress = SweepProgress(console)
    interrupted = False
    with RecordWriter(folder) as writer:
        collector = RecordCollector(writer, progress, cloud_host)

        def site() -> None:
            outcome["site"] = run_playbook("site", inventory, variables, progress.on_event, cancel.is_set)

        playbook = threading.Thread(target=site)
        with progress:
            playbook.start()
            try:
                while playbook.is_alive():
                    collector.take(receiver.receive(200))
            except KeyboardInterrupt:
                interrupted = True
                cancel.set()
                progress.note = "interrupted: stopping the playbook, then tearing down"
                playbook.join()
            collector.take(receiver.receive(0))
            if interrupted:
                run_playbook("teardown", inventory, variables, progress.on_event)
        receiver.close()
        for record in _spooled(folder.path):
            collector.add(record)
    if collector.layer_rows:
        write_layers(folder, collector.layer_rows)
    folder.write_environment(environment(folder.path, inventory))
    count = len(collector.seen)
    problems = judge(loaded, folder) if count and not interrupted else []
    reports = build_report(folder.path) if count else []
    if interrupted:
        raise Interrupted(f"interrupted: hosts torn down; {count} records kept in {folder.path}")
    result = outcome["site"]
    if not result.ok:
        first = collector.failures or [str(failure) for failure in result.failures] or [result.status]
        raise ExperimentFailed(f"sweep failed ({first[0]}); {count} records kept in {folder.path}")
    if count != collector.expected:
        raise ExperimentFailed(f"sweep recorded {count} of {collector.expected} inferences; see {folder.path}")
    if problems:
        raise ExperimentFailed(f"{problems[0]}; {count} records kept in {folder.path}")
    return SweepOutcome(folder, count, collector.expected, reports)


def judge(loaded: LoadedManifest, folder: ResultsFolder) -> list[str]:
    """The manifest's ``evaluate`` partitioners judged on the records; what went wrong, if anything.
    A partitioner that cannot decide fails the sweep after its records and report are written."""
    wanted = [spec.model_dump(exclude_none=True) for spec in loaded.manifest.evaluate]
    if not wanted:
        return []
    try:
        judge_sweep(folder, loaded.runs, wanted)
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


def _spooled(results: Path):
    """Records the edge hosts spooled locally, as collected into ``hosts/<host>/records.jsonl``."""
    for spool in sorted(results.glob("hosts/*/records.jsonl")):
        for line in spool.read_text().splitlines():
            if line.strip():
                yield InferenceRecord(**json.loads(line))


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
