"""The live view of a sweep: each host's latest playbook task, then the inferences as they arrive."""

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.results import InferenceRecord

_STATUS = {
    "runner_on_ok": "ok",
    "runner_on_changed": "changed",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
    "runner_on_start": "running",
}


class SweepProgress:
    """Fed by ansible-runner events (from its thread) and by records (from the main thread)."""

    def __init__(self, console: Console):
        self.hosts: dict[str, tuple[str, str]] = {}
        self.note = ""
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        )
        self.task = self.bar.add_task("inferences", total=None)
        self.live = Live(console=console, get_renderable=self._render, refresh_per_second=4, transient=False)

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc_info):
        self.live.__exit__(*exc_info)
        if not self.live.console.is_terminal:
            self.live.console.line()

    def on_event(self, event: dict) -> None:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        if kind in _STATUS and data.get("host"):
            status = "changed" if kind == "runner_on_ok" and data.get("res", {}).get("changed") else _STATUS[kind]
            self.hosts[data["host"]] = (data.get("task", ""), status)

    def expect(self, count: int) -> None:
        total = self.bar.tasks[0].total or 0
        self.bar.update(self.task, total=total + count)

    def recorded(self, record: InferenceRecord) -> None:
        self.bar.update(
            self.task,
            advance=1,
            description=f"{record.run} cut {record.cut} ({record.layer}): {record.e2e_ns / 1e6:.1f} ms",
        )

    def uploaded(self, upload) -> None:
        """One repeat of an upload run (a ``harness.sweep.observer.UploadRepeat``)."""
        before = sum(1 for query in upload.queries if query.before_end)
        self.bar.update(
            self.task,
            advance=1,
            description=f"{upload.run} upload {upload.repeat}: {before} queries before it ended",
        )

    def _render(self):
        table = Table(box=None, show_header=True, header_style="bold")
        for column in ("host", "task", "status"):
            table.add_column(column)
        for host, (task, status) in sorted(self.hosts.items()):
            table.add_row(host, task, status)
        parts = [table, self.bar]
        if self.note:
            parts.append(self.note)
        return Group(*parts)
