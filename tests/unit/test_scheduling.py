"""The nightly regression's schedulers (systemd timer, cron, CI workflow) and scripts/nightly, which
they all run; the script is run with a stand-in for the harness, so no sweep starts."""

import configparser
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEDULING = REPO / "scheduling"
NIGHTLY = REPO / "scripts" / "nightly"
CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
USAGE = (
    "usage: scripts/nightly MANIFEST INVENTORY [TOLERANCE] "
    "(or HARNESS_NIGHTLY_MANIFEST, HARNESS_NIGHTLY_INVENTORY, HARNESS_NIGHTLY_TOLERANCE)"
)


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((SCHEDULING / name).read_text())
    return parser


def test_the_service_runs_scripts_nightly_once_from_the_clone_with_its_settings():
    service = _unit("harness-nightly.service")["Service"]
    assert service["Type"] == "oneshot"
    clone, script = service["ExecStart"].split("/scripts/", 1)
    assert (REPO / "scripts" / script) == NIGHTLY
    assert service["WorkingDirectory"] == clone
    assert NIGHTLY.is_file() and os.access(NIGHTLY, os.X_OK)
    assert service["EnvironmentFile"] == "%h/.config/split-harness/nightly.env"
    assert service["KillSignal"] == "SIGINT" and service["KillMode"] == "mixed"


def test_the_timer_starts_the_service_every_night_at_three():
    timer = _unit("harness-nightly.timer")
    assert timer["Timer"]["Unit"] == "harness-nightly.service"
    assert (SCHEDULING / timer["Timer"]["Unit"]).is_file()
    assert timer["Timer"]["OnCalendar"] == "*-*-* 03:00"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["RandomizedDelaySec"] == "5min"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_the_cron_line_runs_scripts_nightly_at_three():
    lines = [line for line in (SCHEDULING / "crontab").read_text().splitlines() if line.strip()]
    entries = [line for line in lines if not line.lstrip().startswith("#")]
    assert len(entries) == 1
    *times, command = entries[0].split(None, 5)
    assert times == ["0", "3", "*", "*", "*"]
    assert all(CRON_FIELD.match(field) for field in times)
    assert command.split()[0] == "$HOME/split-harness/scripts/nightly"
    assert "%" not in command, "cron ends the command at an unescaped %"


def test_the_workflow_runs_scripts_nightly_on_the_lab_runner_one_at_a_time():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "nightly.yml").read_text())
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    assert [len(entry["cron"].split()) for entry in workflow["on"]["schedule"]] == [5]
    assert workflow["concurrency"]["cancel-in-progress"] is False
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == ["self-hosted", "lab"]
    runs = [step.get("run", "").strip() for step in job["steps"]]
    assert runs.index("./scripts/setup") < runs.index("./scripts/nightly")
    uses = {step["uses"].split("@")[0]: step for step in job["steps"] if "uses" in step}
    assert {"actions/checkout", "actions/upload-artifact", "mikepenz/action-junit-report"} <= set(uses)
    uploaded = uses["actions/upload-artifact"]["with"]["path"].splitlines()
    assert [Path(path).name for path in uploaded] == ["regress.xml", "regress.md"]
    assert uses["mikepenz/action-junit-report"]["with"]["report_paths"].endswith("/regress.xml")


@pytest.fixture
def fake_harness(tmp_path):
    """A stand-in for the harness that writes its directory and arguments, one per line, and exits
    with FAKE_STATUS."""
    script = tmp_path / "harness"
    script.write_text('#!/usr/bin/env bash\n{ pwd; printf "%s\\n" "$@"; } > "$FAKE_CALL"\nexit "${FAKE_STATUS:-0}"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _nightly(tmp_path: Path, fake: Path, *args: str, env: dict | None = None, status: int = 0):
    clean = {key: value for key, value in os.environ.items() if not key.startswith("HARNESS_NIGHTLY_")}
    extra = {"HARNESS_NIGHTLY_HARNESS": str(fake), "FAKE_CALL": str(tmp_path / "call"), "FAKE_STATUS": str(status)}
    return subprocess.run(
        [str(NIGHTLY), *args],
        cwd=tmp_path,
        env=clean | extra | (env or {}),
        capture_output=True,
        text=True,
        timeout=30,
    )


def _call(tmp_path: Path) -> list[str]:
    return (tmp_path / "call").read_text().splitlines()


def test_nightly_runs_regress_from_the_repository_and_exits_with_its_status(tmp_path, fake_harness):
    done = _nightly(tmp_path, fake_harness, "manifests/alexnet.yml", "inventory/lab", "5%", status=1)
    assert done.returncode == 1
    assert _call(tmp_path) == [
        str(REPO),
        "regress",
        "manifests/alexnet.yml",
        "-i",
        "inventory/lab",
        "--baseline",
        "latest",
        "--tolerance",
        "5%",
    ]


def test_nightly_takes_its_settings_from_the_environment_file(tmp_path, fake_harness):
    settings = dict(
        line.split("=", 1)
        for line in (SCHEDULING / "nightly.env").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert set(settings) == {"HARNESS_NIGHTLY_MANIFEST", "HARNESS_NIGHTLY_INVENTORY", "HARNESS_NIGHTLY_TOLERANCE"}
    done = _nightly(tmp_path, fake_harness, env=settings)
    assert done.returncode == 0, done.stderr
    assert _call(tmp_path)[1:] == [
        "regress",
        settings["HARNESS_NIGHTLY_MANIFEST"],
        "-i",
        settings["HARNESS_NIGHTLY_INVENTORY"],
        "--baseline",
        "latest",
        "--tolerance",
        settings["HARNESS_NIGHTLY_TOLERANCE"],
    ]


def test_nightly_tolerance_defaults_to_ten_percent(tmp_path, fake_harness):
    done = _nightly(tmp_path, fake_harness, "manifests/alexnet.yml", "inventory/lab")
    assert done.returncode == 0, done.stderr
    assert _call(tmp_path)[-2:] == ["--tolerance", "10%"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((), "no manifest: give MANIFEST or set HARNESS_NIGHTLY_MANIFEST"),
        (("manifests/alexnet.yml",), "no inventory: give INVENTORY or set HARNESS_NIGHTLY_INVENTORY"),
        (("m.yml", "inventory/lab", "10%", "extra"), "expected at most 3 arguments, got 4"),
    ],
    ids=["no-manifest", "no-inventory", "too-many"],
)
def test_nightly_without_what_it_needs_prints_usage_and_exits_2(tmp_path, fake_harness, args, reason):
    done = _nightly(tmp_path, fake_harness, *args)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"scripts/nightly: {reason}", USAGE]
    assert not (tmp_path / "call").exists(), "the harness was run"
