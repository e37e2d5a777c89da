"""The playbook variables that name a sweep to the lab lock it takes on its hosts."""

import os
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.manifest import load_manifest
from harness.sweep.controller import playbook_variables
from harness.sweep.lock import lock_variables

REPO = Path(__file__).resolve().parents[2]


def test_the_owner_is_this_controller_process_and_the_run(tmp_path):
    before = datetime.now(UTC).replace(microsecond=0)
    variables = lock_variables("alexnet", tmp_path / "results")
    owner = variables["harness_lock_owner"]
    assert set(variables) == {"harness_lock_token", "harness_lock_owner"}
    assert re.fullmatch(r"[0-9a-f]{32}", variables["harness_lock_token"])
    assert {key: owner[key] for key in ("controller_host", "controller_pid", "manifest", "results")} == {
        "controller_host": socket.gethostname(),
        "controller_pid": os.getpid(),
        "manifest": "alexnet",
        "results": str((tmp_path / "results").resolve()),
    }
    since = datetime.fromisoformat(owner["since"])
    assert since.tzinfo is not None and before <= since <= datetime.now(UTC) + timedelta(seconds=1)


def test_every_sweep_gets_a_fresh_token():
    tokens = {lock_variables("alexnet", None)["harness_lock_token"] for _ in range(100)}
    assert len(tokens) == 100


def test_a_phase_without_results_names_none():
    assert lock_variables("alexnet", None)["harness_lock_owner"]["results"] == ""


def test_the_sweep_passes_its_lock_to_the_playbook(tmp_path):
    loaded = load_manifest(REPO / "manifests" / "alexnet.yml", ["cuts=[0]"])
    variables = playbook_variables(loaded, "tcp://127.0.0.1:5000", tmp_path / "out")
    assert re.fullmatch(r"[0-9a-f]{32}", variables["harness_lock_token"])
    assert variables["harness_lock_owner"]["manifest"] == "alexnet"
    assert variables["harness_lock_owner"]["results"] == str((tmp_path / "out").resolve())
    assert variables["harness_results"] == variables["harness_lock_owner"]["results"]
