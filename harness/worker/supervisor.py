"""Keeps a worker serving where no service manager restarts it (the lab, the local inventory).

systemd restarts the worker's unit on failure; ``start-stop-daemon`` only starts it. So under
start-stop-daemon the worker runs as the child of this supervisor: a worker that dies (killed,
out of memory, a crash in a native library) is started again after ``delay_s``, and the sweep's
edge driver, which saw its connection drop, retries the inference in flight. A worker that
dies too often in a short time is not restarted again, as systemd's start limit does, so a
worker that cannot start fails the sweep instead of looping. SIGTERM or SIGINT to the supervisor
stops the worker and then the supervisor; if the supervisor itself is killed, the kernel sends
the worker SIGTERM (``PR_SET_PDEATHSIG``), so no worker outlives it.
"""

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger("harness.supervisor")

SUPERVISOR_ENV = "HARNESS_WORKER_SUPERVISOR"
"""Set in the worker's environment: the supervisor's pid, then a colon and the restart count."""

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class RestartPolicy:
    delay_s: float = 1.0
    burst: int = 5
    interval_s: float = 60.0
    """At most ``burst`` restarts within ``interval_s``; one more ends the supervisor with exit 1."""


def supervised() -> tuple[int, int]:
    """``(supervisor pid, restarts)`` for a worker run under the supervisor, ``(0, 0)`` otherwise."""
    value = os.environ.get(SUPERVISOR_ENV, "")
    pid, _, restarts = value.partition(":")
    return (int(pid), int(restarts)) if pid.isdigit() and restarts.isdigit() else (0, 0)


def die_with_supervisor() -> None:
    """In the worker: be sent SIGTERM when the supervisor goes, however it goes (Linux only)."""
    supervisor, _ = supervised()
    if not supervisor or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:
        raise SystemExit(f"the worker's supervisor {supervisor} ended before the worker started")


class Supervisor:
    """Runs ``command`` and starts it again whenever it ends other than by our own stop."""

    def __init__(self, command: Sequence[str], policy: RestartPolicy | None = None):
        self.command = list(command)
        self.policy = policy or RestartPolicy()
        self.restarts = 0
        self._stopping = False
        self._child: subprocess.Popen | None = None

    def stop(self, *_signal_args) -> None:
        self._stopping = True
        if self._child is not None and self._child.poll() is None:
            self._child.terminate()

    def run(self) -> int:
        """The exit code to end with: the worker's own when it stopped by itself, 0 when stopped."""
        previous = {number: signal.signal(number, self.stop) for number in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._keep_running()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _keep_running(self) -> int:
        recent: deque[float] = deque()
        while True:
            code = self._run_once()
            if self._stopping:
                return 0
            if code == 0:
                log.info("worker ended by itself (exit 0); not restarting")
                return 0
            now = time.monotonic()
            recent.append(now)
            while recent and now - recent[0] > self.policy.interval_s:
                recent.popleft()
            if len(recent) > self.policy.burst:
                log.error(
                    "worker died %d times within %g s (last: %s); giving up",
                    len(recent),
                    self.policy.interval_s,
                    _how(code),
                )
                return 1
            self.restarts += 1
            log.warning("worker %s; restart %d in %g s", _how(code), self.restarts, self.policy.delay_s)
            time.sleep(self.policy.delay_s)
            if self._stopping:
                return 0

    def _run_once(self) -> int:
        environment = {**os.environ, SUPERVISOR_ENV: f"{os.getpid()}:{self.restarts}"}
        self._child = subprocess.Popen(self.command, env=environment)
        log.info("worker started, pid %d", self._child.pid)
        return self._child.wait()


def _how(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with {code}"
