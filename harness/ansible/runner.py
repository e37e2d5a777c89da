"""Running a playbook through ansible-runner: events to a callback, pass/fail from the final stats.

Each run gets a fresh private data directory (ansible-runner reuses stale files otherwise), removed
afterwards. A cancel callback is always given, so ansible-runner leaves SIGINT to the harness, which
then still runs the teardown.
"""

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner

from harness.ansible.project import ROOT, ansible_environment, playbook


@dataclass(frozen=True)
class TaskFailure:
    """A task that failed on a host; ``unreachable`` when the host itself could not be reached over
    its connection (SSH), which leaves that host out of the rest of the play."""

    host: str
    task: str
    message: str
    unreachable: bool = False

    def __str__(self) -> str:
        return f"host {self.host}, task '{self.task}': {self.message}"


@dataclass
class PlaybookResult:
    name: str
    status: str
    rc: int
    stats: dict
    failures: list[TaskFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0

    def changed(self) -> int:
        return sum((self.stats or {}).get("changed", {}).values())


def run_playbook(
    name: str,
    inventory: Path,
    extravars: dict,
    on_event: Callable[[dict], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> PlaybookResult:
    """Run ``playbooks/<name>.yml`` on ``inventory``; never raises for a failed play (see ``ok``)."""
    private = Path(tempfile.mkdtemp(prefix="harness-ansible-"))
    failures: list[TaskFailure] = []

    def handle(event: dict) -> bool:
        failure = _failure(event)
        if failure is not None:
            failures.append(failure)
        if on_event is not None:
            on_event(event)
        return True

    try:
        (private / "cp").mkdir()
        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(ROOT),
            playbook=str(playbook(name)),
            inventory=str(inventory.resolve()),
            extravars=extravars,
            envvars=ansible_environment(private / "cp"),
            event_handler=handle,
            cancel_callback=cancelled,
            quiet=True,
        )
        rc = runner.rc if runner.rc is not None else -1
        return PlaybookResult(name, runner.status, rc, runner.stats or {}, failures)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _failure(event: dict) -> TaskFailure | None:
    if event.get("event") not in ("runner_on_failed", "runner_on_unreachable"):
        return None
    data = event.get("event_data", {})
    if data.get("ignore_errors"):
        return None
    result = _first_failed_item(data.get("res", {}))
    message = result.get("msg") or result.get("stderr") or result.get("reason") or "failed"
    if result.get("stderr") and result.get("msg") and "non-zero return code" in str(result["msg"]):
        message = result["stderr"]
    lines = [line for line in str(message).strip().splitlines() if line.strip()]
    unreachable = event["event"] == "runner_on_unreachable"
    return TaskFailure(data.get("host", "?"), data.get("task", "?"), lines[-1] if lines else "failed", unreachable)


def _first_failed_item(result: dict) -> dict:
    """A looped task's result says only "All items completed" or "One or more items failed"; the
    reason (an SSH error, a module's message) is in the first item that failed."""
    items = [item for item in result.get("results") or [] if isinstance(item, dict)]
    return next((item for item in items if item.get("failed") or item.get("unreachable")), result)
