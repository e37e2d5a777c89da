"""The lab lock from the controller's side (roles/lab_lock does the work on the hosts): who a sweep
is, so its hosts can hold the lock for it, and ``harness unlock`` for the lock a lost run left.

Each sweep gets a fresh token, so a lock is given back only by the run that took it; the owner
details are written beside it on every host, so a refused run can say who holds the lab, and a
lock left by a controller process that is gone can be told from one still in use. A resumed or
repeated sweep is a new run with a new token: the teardown of the previous one gave its lock back.
"""

import os
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path

from harness.ansible.inventory import inventory_groups
from harness.ansible.runner import PlaybookResult, run_playbook
from harness.errors import BadInput, ExperimentFailed


def lock_variables(manifest: str, results: Path | None) -> dict:
    """The playbook variables that take the lab lock for one sweep of ``manifest``.

    ``controller_host`` is the node name Ansible's ``uname -n`` gives on this machine, which the
    role compares to decide whether it can look the owner's pid up here.
    """
    return {
        "harness_lock_token": uuid.uuid4().hex,
        "harness_lock_owner": {
            "controller_host": socket.gethostname(),
            "controller_pid": os.getpid(),
            "manifest": manifest,
            "results": str(results.resolve()) if results else "",
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }


def unlock(inventory: Path, force: bool) -> PlaybookResult:
    """Remove the lab lock from every host of ``inventory``, whoever holds it; a lock held by a
    process still running on this controller only with ``force``. Raises with the first failure."""
    if not inventory_groups(inventory).get("all"):
        raise BadInput(f"inventory {inventory} has no hosts")
    result = run_playbook("unlock", inventory, {"harness_unlock_force": force})
    if not result.ok:
        reason = str(result.failures[0]) if result.failures else f"status {result.status}, rc {result.rc}"
        raise ExperimentFailed(f"unlock failed: {reason}")
    return result
