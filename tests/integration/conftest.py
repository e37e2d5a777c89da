"""Workers started as real daemons (``harness worker serve``) on loopback, stopped by their own pid."""

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOSTS_SUBDIR = f"split-harness-{os.environ.get('USER') or 'user'}"
"""Where inventory/local puts its hosts' directories under TMPDIR (see its group_vars)."""


def latest_emulated_ns(expected_ns):
    """The latest an emulated transfer of ``expected_ns`` at bytes/rate may arrive and still pass.

    The emulated link never delivers early, so any lateness is the machine's other work (the rest of
    the suite runs beside these tests): 10% of the transfer, plus 2 ms for the loopback round trip
    through ZeroMQ under load, which is fixed rather than proportional and so shows on small cuts."""
    return 1.10 * expected_ns + 2_000_000


class WorkerProcess:
    def __init__(self, args: list[str], log: Path):
        self.log = log
        command = [sys.executable, "-m", "harness.cli", "worker", "serve", "--threads", "1", *args]
        self.process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=_child_env()
        )
        ready, _, _ = select.select([self.process.stdout], [], [], 60)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("worker listening on "):
            self.process.kill()
            raise AssertionError(f"worker did not start: {line!r}\n{log.read_text()}")
        self.banner = line.strip()
        self.endpoint = line.split()[3]

    def stop(self, timeout: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@contextlib.contextmanager
def pipeline_clients(endpoints: list[str], keys=None):
    """The edge's clients of a pipeline of workers (``connect_pipeline``), closed on the way out."""
    from harness.worker.edge import connect_pipeline

    clients = connect_pipeline(endpoints, keys)
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


@pytest.fixture
def start_worker(tmp_path):
    """Start ``harness worker serve`` with extra arguments; every worker started is stopped afterwards."""
    started: list[WorkerProcess] = []

    def start(*args: str) -> WorkerProcess:
        worker = WorkerProcess(["--bind", "tcp://127.0.0.1:*", *args], tmp_path / f"worker{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


def skip_unless_lab_possible(tools: tuple[tuple[str, str], ...], why: str) -> None:
    """Skip with a reason unless this is root with ``tools`` (name, package) and namespaces work."""
    from harness.errors import BadInput
    from harness.lab import system

    if os.geteuid() != 0:
        pytest.skip(f"needs root for {why}")
    for name, package in tools:
        try:
            system.tool(name)
        except BadInput:
            pytest.skip(f"needs `{name}` ({package})")
    probe = f"p{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", probe], check=True)


@pytest.fixture
def short_tmp():
    """A fresh directory with a short path, removed afterwards. A lab's state directory holds SSH's
    control sockets, whose paths may hold 107 bytes; pytest's own directories grow long under
    pytest-xdist."""
    base = Path(tempfile.mkdtemp(prefix="lab-", dir="/tmp"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)
