"""The lab relay passes Ctrl-C on to the command it runs in the observer exactly once.

A terminal's Ctrl-C goes to its whole foreground process group. The run in the observer must not
be in that group (it would get SIGINT twice, the second interrupting its teardown), and the relay
must pass the one it gets on. The observer's namespace is replaced here by a plain child process:
what is checked is the signal's path, not the namespace.
"""

import os
import signal
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    received = []
    signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    print("ready", os.getsid(0), flush=True)
    deadline = time.monotonic() + 20
    while not received and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    print("sigints", len(received), flush=True)
    sys.exit(130)
    """
)

RELAY = textwrap.dedent(
    f"""
    import sys
    from pathlib import Path
    import harness.lab.relay as relay
    relay.check_lab_up = lambda state_dir: None
    relay.inside_observer = lambda state_dir: False
    relay.observer_command = lambda state_dir, argv: [sys.executable, "-c", {CHILD!r}]
    sys.exit(relay.relay_to_observer(Path("lab-state"), ["sweep", "manifests/alexnet.yml"]))
    """
)


def test_ctrl_c_reaches_the_run_in_the_observer_once():
    relay = subprocess.Popen([sys.executable, "-c", RELAY], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        ready = relay.stdout.readline().split()
        assert ready[0] == "ready", ready
        assert int(ready[1]) != os.getsid(relay.pid), "the run shares the terminal's session"
        os.killpg(relay.pid, signal.SIGINT)
        output, _ = relay.communicate(timeout=30)
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
    assert output.split() == ["sigints", "1"]
    assert relay.returncode == 130
