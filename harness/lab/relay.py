"""Commands aimed at a lab run inside its observer namespace, the only place that reaches the hosts.

The root namespace has no route into the lab (by design: once the lab is down its addresses would
be routed out of the machine), so ``harness sweep -i inventory/vlab`` started from a shell runs
itself again under ``ip netns exec`` in the observer's namespace, with the same environment and
working directory, and exits with that run's status.

Ctrl-C must reach that run once, as SIGINT, so that it tears the lab down: it runs in a session of
its own, away from the terminal's signals, and this process passes on the SIGINT or SIGTERM it
gets. (Left in the terminal's process group it would get Ctrl-C twice, the second interrupting its
teardown; and subprocess.run would SIGKILL it on this side's KeyboardInterrupt.)
"""

import signal
import subprocess
import sys
from pathlib import Path

from harness.lab.status import check_lab_up, inside_observer, observer_command


def relay_to_observer(state_dir: Path | None, argv: list[str]) -> int | None:
    """The exit status of ``argv`` run inside the lab's observer, or None when it must run here:
    the inventory is no lab's (``state_dir`` None) or this process is already inside the observer."""
    if state_dir is None:
        return None
    check_lab_up(state_dir)
    if inside_observer(state_dir):
        return None
    command = observer_command(state_dir, [sys.executable, "-m", "harness.cli", *argv])
    run = subprocess.Popen(command, start_new_session=True)
    passed_on = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, lambda number, _frame: run.send_signal(number)) for number in passed_on}
    try:
        return run.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
