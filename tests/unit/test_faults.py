"""What keeps a sweep going through faults, piece by piece: the worker's supervisor, the edge's
retries, and the parts of ``--resume`` that need no hosts (end-to-end faults are in the
integration tests)."""

import sys

import pandas as pd
import pytest

from harness.errors import BadInput, ExperimentFailed
from harness.manifest import load_manifest
from harness.results import RecordWriter, ResultsFolder
from harness.sweep.resume import Recorded, check_resumable
from harness.worker.client import WorkerLost
from harness.worker.edge import RetryPolicy, sweep
from harness.worker.supervisor import SUPERVISOR_ENV, RestartPolicy, Supervisor, supervised
from tests.unit.test_results import record


def test_supervisor_restarts_a_dying_worker_until_its_start_limit():
    dying = Supervisor([sys.executable, "-c", "raise SystemExit(3)"], RestartPolicy(delay_s=0.01, burst=2))
    assert dying.run() == 1
    assert dying.restarts == 2


def test_supervisor_leaves_a_worker_that_ended_by_itself():
    done = Supervisor([sys.executable, "-c", "pass"], RestartPolicy(delay_s=0.01))
    assert done.run() == 0
    assert done.restarts == 0


def test_the_worker_learns_its_supervisor_from_the_environment(monkeypatch):
    monkeypatch.setenv(SUPERVISOR_ENV, "4242:3")
    assert supervised() == (4242, 3)
    monkeypatch.setenv(SUPERVISOR_ENV, "garbage")
    assert supervised() == (0, 0)


class FlakyDriver:
    """Stands in for the edge driver: the worker is lost on the listed (cut, repeat, attempt)."""

    run = "r"

    class split:
        name = "m"

    def __init__(self, lost: set[tuple[int, int, int]]):
        self.lost = lost
        self.prepared: list[int] = []
        self.awaited = 0
        self.attempts: dict[tuple[int, int], int] = {}

    def prepare(self, cut: int) -> None:
        self.prepared.append(cut)

    def describe(self, cut: int) -> tuple[int, str]:
        return cut, ""

    def run_pipeline(self, cut: int, inputs, repeat: int = 0, input_index: int = 0):
        if inputs != "measured":
            return None, None, []
        attempt = self.attempts[(cut, repeat)] = self.attempts.get((cut, repeat), 0) + 1
        if (cut, repeat, attempt) in self.lost:
            raise WorkerLost("the connection to the worker at tcp://w dropped (the worker stopped or died)")
        return "output", record(cut, repeat), []

    def await_worker(self, wait_s: float, after: Exception) -> None:
        self.awaited += 1


def _inputs():
    return ["measured"]


def test_a_lost_inference_is_reported_and_retried_on_freshly_prepared_tails():
    driver = FlakyDriver({(2, 1, 1)})
    failures = []
    done = [made for made, _, _ in sweep(driver, [(0, 0), (2, 0), (2, 1)], _inputs(), 0, None, failures.append)]
    assert [(made.cut, made.repeat) for made in done] == [(0, 0), (2, 0), (2, 1)]
    assert [(failure.cut, failure.repeat, failure.attempt) for failure in failures] == [(2, 1, 1)]
    assert failures[0].error.startswith("the connection to the worker at tcp://w dropped")
    assert driver.awaited == 1
    assert driver.prepared == [0, 2, 2], "the restarted worker's tail is prepared again"


def test_an_inference_lost_more_often_than_the_policy_allows_fails_the_plan():
    driver = FlakyDriver({(0, 0, 1), (0, 0, 2)})
    failures = []
    with pytest.raises(ExperimentFailed, match=r"cut 0, repeat 0 failed 2 times \(retry.attempts is 1\); last: "):
        list(sweep(driver, [(0, 0)], _inputs(), 0, RetryPolicy(attempts=1), failures.append))
    assert [failure.attempt for failure in failures] == [1, 2]


def test_resuming_writer_drops_a_half_written_row_and_appends(tmp_path):
    folder = ResultsFolder(tmp_path / "r")
    with RecordWriter(folder) as writer:
        writer.append(record(0, 0))
        writer.append(record(0, 1))
    with folder.records_csv.open("a") as csv:
        csv.write("r,alexnet,module,3")
    with RecordWriter(folder, resume=True) as writer:
        assert writer.rows == 2
        writer.append(record(2, 0))
    records = pd.read_parquet(folder.records_parquet)
    assert list(zip(records["cut"], records["repeat"], strict=True)) == [(0, 0), (0, 1), (2, 0)]


def test_a_resumed_plan_skips_what_is_recorded():
    already = Recorded(keys={("a", 3, 1), ("a", 0, 0), ("b", 0, 0)}, layer_rows=[{"run": "a"}])
    assert already.plan() == {"done": {"a": [(0, 0), (3, 1)], "b": [(0, 0)]}, "profiled": ["a"]}


def test_resume_refuses_a_manifest_that_renders_differently(tmp_path):
    folder = ResultsFolder(tmp_path / "r")
    folder.write_manifest(load_manifest("manifests/alexnet.yml", ["repeats=2"]).rendered.text)
    check_resumable(folder, load_manifest("manifests/alexnet.yml", ["repeats=2"]))
    with pytest.raises(BadInput) as refused:
        check_resumable(folder, load_manifest("manifests/alexnet.yml", ["repeats=3"]))
    assert str(refused.value) == (
        f"--resume {folder.path}: the manifest renders differently from {folder.manifest} "
        "(-  repeats: 2; +  repeats: 3); expected the same manifest and --set values as the sweep being resumed"
    )


def test_resume_needs_a_folder_a_sweep_wrote(tmp_path):
    with pytest.raises(BadInput, match=r"--resume .*: no manifest.rendered.yml there; expected a folder a sweep wrote"):
        check_resumable(ResultsFolder(tmp_path / "empty"), load_manifest("manifests/alexnet.yml", []))
