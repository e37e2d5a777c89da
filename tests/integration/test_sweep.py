"""``harness sweep`` through Ansible on inventory/local, as a user runs it: a subprocess per command.

Each test gives the hosts' directories their own TMPDIR, and afterwards checks that no process runs
from them and that only the provisioned runtime is left there.
"""

import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from experiments.models import SkipNet
from experiments.tasks import top1
from harness.lab import LabSpec
from harness.lab.inventory import write as write_lab_inventory
from harness.manifest import DatasetSpec
from harness.model import load_model
from harness.model.datasets import load_inputs
from tests.integration.conftest import HOSTS_SUBDIR, REPO, latest_emulated_ns

RATE = 4e6
SHORT = ["--set", "repeats=5", "--set", "cuts=[0,3,13]"]
"""Five inferences a cut: the fastest of five is the one timed against the emulated link."""
RESULT_FILES = [
    "manifest.rendered.yml",
    "environment.json",
    "records.csv",
    "records.parquet",
    "layers.parquet",
    "summary.csv",
    "time_by_cut_alexnet-module-4MBps-none.png",
    "bytes_by_cut_alexnet-module-4MBps-none.png",
    "report.html",
]


@pytest.fixture
def hosts_dir(tmp_path):
    """Where inventory/local puts each host's directory (its harness_root follows TMPDIR)."""
    path = tmp_path / "hosts"
    path.mkdir()
    yield path
    assert _processes_in(path) == [], "a process still runs from the hosts' directories"


def _env(hosts_dir: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(hosts_dir)}


def free_port() -> int:
    """A port nothing listens on now, so that a sweep never meets another run's worker."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def harness(hosts_dir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    if args[0] == "sweep":
        args = (*args, "--set", f"port={free_port()}")
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=REPO,
        env=_env(hosts_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _processes_in(directory: Path) -> list[int]:
    """Processes whose working directory is under ``directory`` (workers and sweeps run there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = (entry / "cwd").resolve()
            except OSError:
                continue
            if cwd.is_relative_to(directory.resolve()):
                found.append(int(entry.name))
    return found


def _left_behind(hosts_dir: Path) -> list[str]:
    """Files other than the provisioned runtime (experiment code, host facts, weight files)."""
    kept = {"experiments", "host.json", "weights"}
    return sorted(
        str(path.relative_to(hosts_dir))
        for root in hosts_dir.glob(f"{HOSTS_SUBDIR}/*")
        for path in root.iterdir()
        if path.name not in kept
    )


def test_short_sweep_writes_every_result(hosts_dir, tmp_path):
    out = tmp_path / "results"
    done = harness(hosts_dir, "sweep", "manifests/alexnet.yml", *SHORT, "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    for name in RESULT_FILES:
        assert (out / name).is_file(), name
    records = pd.read_parquet(out / "records.parquet")
    assert len(records) == 15
    assert sorted(records["cut"].unique()) == [0, 3, 13]
    assert (records.groupby("cut").size() == 5).all()
    assert set(records["shaping"]) == {"emulated"}
    # The emulated link never delivers early; lateness is the machine's other work, so the fastest
    # inference of each cut is the one compared with bytes/rate.
    records["expected_ns"] = 1e9 * (records["bytes_wire"] + records["reply_bytes_wire"]) / RATE
    assert (records["transfer_ns"] >= 0.99 * records["expected_ns"]).all()
    per_cut = records.groupby("cut")[["transfer_ns", "expected_ns"]].min()
    assert (per_cut["transfer_ns"] <= latest_emulated_ns(per_cut["expected_ns"])).all(), per_cut
    assert list(records["bytes_raw"].groupby(records["cut"]).first()) == [602112, 186624, 36864]
    assert len(pd.read_csv(out / "records.csv")) == 15
    layers = pd.read_parquet(out / "layers.parquet")
    assert sorted(set(zip(layers["role"], layers["host"], strict=True))) == [
        ("cloud", "cloud-local"),
        ("edge", "edge-local"),
    ]
    assert (layers.groupby("role").size() == 22).all()
    assert (layers["median_ns"] > 0).all() and (layers["p95_ns"] >= layers["median_ns"]).all()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["cut"]) == [0, 3, 13]
    environment = (out / "environment.json").read_text()
    assert '"edge-local"' in environment and '"cloud-local"' in environment and '"arch"' in environment
    assert done.stdout.startswith(f"15 inferences recorded in {out}")
    assert _left_behind(hosts_dir) == []


def test_dry_run_starts_nothing(hosts_dir, tmp_path):
    done = harness(hosts_dir, "sweep", "manifests/alexnet.yml", *SHORT, "--dry-run", "--out", str(tmp_path / "r"))
    assert done.returncode == 0, done.stderr
    assert "dry run: 1 runs on inventory/local; nothing was started" in done.stdout
    assert "alexnet-module-4MBps-none" in done.stdout
    assert not (tmp_path / "r").exists()
    assert not (hosts_dir / HOSTS_SUBDIR).exists()


def test_a_power_sensor_the_hosts_lack_stops_the_sweep_at_its_line(hosts_dir, tmp_path):
    lines = (REPO / "manifests/alexnet.yml").read_text().splitlines()
    at = lines.index("hosts: {edge: edge, cloud: cloud}")
    manifest = tmp_path / "jetson.yml"
    manifest.write_text("\n".join([*lines[:at], "energy: {cloud: auto, edge: jetson}", *lines[at:]]) + "\n")
    done = harness(hosts_dir, "sweep", str(manifest), *SHORT, "--out", str(tmp_path / "r"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert re.fullmatch(
        rf"harness: error: {manifest}:{at + 1}: field energy.edge: edge host edge-local has no jetson power source "
        r"\(the harness there found [a-z, ]+\); expected one it has, auto, none, "
        r"or a meter as package.module:function\n",
        done.stderr,
    ), done.stderr
    assert not (tmp_path / "r").exists()
    assert not (hosts_dir / HOSTS_SUBDIR).exists() or _left_behind(hosts_dir) == []


def test_a_sweep_charges_each_inference_each_hosts_meter_and_summarises_it_per_cut(hosts_dir, tmp_path, monkeypatch):
    """A lab's external meter (the example that reads its logger's file) on both roles, through Ansible."""
    watts = tmp_path / "watts"
    watts.write_text("5.0\n")
    monkeypatch.setenv("HARNESS_WATTS_FILE", str(watts))
    lines = (REPO / "manifests/alexnet.yml").read_text().splitlines()
    at = lines.index("hosts: {edge: edge, cloud: cloud}")
    meters = "energy: {edge: experiments.meters:watts_file, cloud: experiments.meters:watts_file}"
    manifest = tmp_path / "metered.yml"
    manifest.write_text("\n".join([*lines[:at], meters, *lines[at:]]) + "\n")
    out = tmp_path / "r"
    done = harness(hosts_dir, "sweep", str(manifest), *SHORT, "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    records = pd.read_parquet(out / "records.parquet")
    edge_s = (records["edge_ns"] + records["encode_ns"]) / 1e9
    cloud_s = records[["cloud_decode_ns", "cloud_ns", "cloud_encode_ns"]].sum(axis=1) / 1e9
    assert ((records["edge_joules"] / (5.0 * edge_s) - 1).abs() <= 0.02).all(), records["edge_joules"]
    assert ((records["cloud_joules"] / (5.0 * cloud_s) - 1).abs() <= 0.02).all(), records["cloud_joules"]
    summary = pd.read_csv(out / "summary.csv")
    medians = records.groupby("cut")[["edge_joules", "cloud_joules"]].median() * 1e3
    assert list(summary["edge_mj_median"]) == pytest.approx(list(medians["edge_joules"]), rel=1e-5)
    assert list(summary["cloud_mj_median"]) == pytest.approx(list(medians["cloud_joules"]), rel=1e-5)
    assert (out / "energy_by_cut_alexnet-module-4MBps-none.png").stat().st_size > 20_000


def test_provision_is_idempotent(hosts_dir):
    first = harness(hosts_dir, "provision", "-i", "inventory/local")
    assert first.returncode == 0, first.stderr
    second = harness(hosts_dir, "provision", "-i", "inventory/local")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "provision: ok on inventory/local, 0 changed"
    purge = harness(hosts_dir, "teardown", "-i", "inventory/local", "--purge")
    assert purge.returncode == 0, purge.stderr
    assert list(hosts_dir.glob(f"{HOSTS_SUBDIR}/*")) == []


def test_failed_sweep_names_host_and_reason_and_tears_down(hosts_dir, tmp_path):
    """A folder of images is read on the edge host, so only the edge can find it missing."""
    manifest = tmp_path / "alexnet.yml"
    dataset = "dataset:\n  name: samples\n"
    text = (REPO / "manifests" / "alexnet.yml").read_text()
    assert dataset in text
    manifest.write_text(text.replace(dataset, f"dataset:\n  name: images\n  path: {tmp_path / 'nothere'}\n"))
    done = harness(hosts_dir, "sweep", str(manifest), "--set", "cuts=[0,3]", "--out", str(tmp_path / "r"))
    assert done.returncode == 1, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("harness: error: sweep failed (host edge-local: ")
    assert f"dataset 'images': folder '{tmp_path / 'nothere'}' does not exist on this host" in last
    assert _left_behind(hosts_dir) == []


def test_an_unlimited_link_is_recorded_and_said_in_words(hosts_dir, tmp_path):
    out = tmp_path / "results"
    sets = ("--set", "bandwidth=unlimited", "--set", "repeats=1", "--set", "cuts=[0,22]")
    done = harness(hosts_dir, "sweep", "manifests/alexnet.yml", *sets, "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    records = pd.read_parquet(out / "records.parquet")
    assert list(records["run"].unique()) == ["alexnet-module-unlimited-none"]
    assert set(records["rate"]) == {float("inf")} and set(records["shaping"]) == {"emulated"}
    assert set(pd.read_csv(out / "records.csv")["rate"]) == {float("inf")}
    assert "emulated link, rate unlimited" in (out / "report.html").read_text()
    assert _left_behind(hosts_dir) == []


FAULT_REPEATS = 30
FAULT_SWEEP = [
    "manifests/alexnet.yml",
    *("--set", f"repeats={FAULT_REPEATS}", "--set", "cuts=[0,3,13]", "--set", "bandwidth=1MB/s"),
]
FAULT_ROWS = FAULT_REPEATS * 3
"""About 25 s of inferences: long enough for a fault to land mid-sweep, short enough to finish."""


def _start_sweep(hosts_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "sweep", *args],
        cwd=REPO,
        env=_env(hosts_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _rows(path: Path) -> int:
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def _wait_for_rows(path: Path, rows: int, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _rows(path) < rows:
        time.sleep(0.2)
    assert _rows(path) >= rows, "no records arrived"


def _complete(records: pd.DataFrame) -> None:
    """Every (run, cut, repeat) of the fault sweep recorded exactly once."""
    assert len(records) == FAULT_ROWS
    keys = set(zip(records["run"], records["cut"], records["repeat"], strict=True))
    assert keys == {("alexnet-module-1MBps-none", cut, repeat) for cut in (0, 3, 13) for repeat in range(FAULT_REPEATS)}


def test_worker_killed_then_ctrl_c_then_controller_killed_then_resume(hosts_dir, tmp_path):
    """kill -9 of the worker mid-sweep: restarted, the inference retried, the sweep goes on; then
    Ctrl-C: torn down, records and logs kept; then --resume, whose controller is killed mid-sweep:
    no row written is lost; then --resume again: the rest, nothing twice, nothing left behind."""
    out = tmp_path / "r"
    port = free_port()
    manifest = [*FAULT_SWEEP, "--set", f"port={port}"]
    sweep = _start_sweep(hosts_dir, *manifest, "--out", str(out))
    _wait_for_rows(out / "records.csv", 3)
    ping = [sys.executable, "-m", "harness.cli", "worker", "ping", f"tcp://127.0.0.1:{port}", "--json"]
    state = json.loads(subprocess.run(ping, capture_output=True, text=True, check=True, cwd=REPO).stdout)
    assert state["supervisor"] and state["restarts"] == 0
    os.kill(state["pid"], signal.SIGKILL)
    _wait_for_rows(out / "records.csv", _rows(out / "records.csv") + 3)
    sweep.send_signal(signal.SIGINT)
    _, stderr = sweep.communicate(timeout=300)
    assert sweep.returncode == 130, stderr[-3000:]
    assert "harness: error: interrupted: hosts torn down;" in stderr
    assert f"continue with `harness sweep ... --resume {out}`" in stderr
    failures = pd.read_csv(out / "failures.csv")
    assert len(failures) >= 1
    assert failures["error"].str.contains("dropped \\(the worker stopped or died\\)").all(), failures["error"]
    assert (failures["attempt"] == 1).all()
    log = (out / "hosts" / "cloud-local" / "worker.log").read_text()
    assert "worker was killed by SIGKILL; restart 1 in 1 s" in log
    before = pd.read_parquet(out / "records.parquet")
    assert 6 <= len(before) < FAULT_ROWS
    assert _left_behind(hosts_dir) == []

    changed = harness(hosts_dir, "sweep", *FAULT_SWEEP, "--set", "repeats=9", "--resume", str(out))
    assert changed.returncode == 2
    assert "the manifest renders differently from" in changed.stderr, changed.stderr
    assert f"-  repeats: {FAULT_REPEATS}; +  repeats: 9" in changed.stderr, changed.stderr

    crashed = _start_sweep(hosts_dir, *manifest, "--resume", str(out))
    _wait_for_rows(out / "records.csv", len(before) + 3)
    crashed.kill()
    crashed.communicate(timeout=60)
    written = _csv_rows(out / "records.csv")

    resumed = _resume(hosts_dir, manifest, out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = pd.read_parquet(out / "records.parquet")
    _complete(after)
    assert before.merge(after, how="left", indicator=True)["_merge"].eq("both").all(), "a row recorded before changed"
    kept = written.merge(after, on=["run", "cut", "repeat", "request", "e2e_ns"], how="left", indicator=True)
    assert kept["_merge"].eq("both").all(), "a row written before the crash was lost or changed"
    assert len(pd.read_csv(out / "failures.csv")) == len(failures), "the first part's failures are kept once"
    assert _left_behind(hosts_dir) == []


def _sweep_as_given(hosts_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """``harness sweep`` with exactly these arguments (a resume must render the manifest as before)."""
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "sweep", *args],
        cwd=REPO,
        env=_env(hosts_dir),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _resume(hosts_dir: Path, manifest: list[str], out: Path) -> subprocess.CompletedProcess:
    return _sweep_as_given(hosts_dir, *manifest, "--resume", str(out))


def _csv_rows(path: Path) -> pd.DataFrame:
    """The rows a CSV of records holds, up to its last complete line."""
    text = path.read_text()
    return pd.read_csv(io.StringIO(text[: text.rfind("\n") + 1]))


@pytest.mark.skipif(os.geteuid() != 0, reason="a full disk is a small tmpfs, and mounting one needs root")
def test_full_disk_on_the_controller_keeps_the_spools_for_resume(hosts_dir, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True)
    try:
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (1024 * 1024 - 12 * 1024))
        out = disk / "r"
        manifest = [*FAULT_SWEEP, "--set", f"port={free_port()}"]
        sweep = _sweep_as_given(hosts_dir, *manifest, "--out", str(out))
        assert sweep.returncode == 1, sweep.stderr[-3000:]
        last = sweep.stderr.strip().splitlines()[-1]
        assert f"cannot write to {out} (No space left on device): the sweep was stopped" in last, last
        assert f"`harness sweep ... --resume {out}` collects them" in last
        written = _csv_rows(out / "records.csv")
        assert 0 < len(written) < FAULT_ROWS
        sweep_id = (out / "sweep.id").read_text().strip()
        spools = list(hosts_dir.glob(f"{HOSTS_SUBDIR}/*/spool-*/records.jsonl"))
        assert [spool.parent.name for spool in spools] == [f"spool-{sweep_id}"]
        kept = spools[0].read_text()
        assert len(kept.splitlines()) > len(written)
        fresh = harness(hosts_dir, "sweep", "manifests/alexnet.yml", *SHORT, "--out", str(tmp_path / "fresh"))
        assert fresh.returncode == 0, fresh.stderr[-3000:]
        others = pd.read_parquet(tmp_path / "fresh" / "records.parquet")
        assert len(others) == 15 and set(others["run"]) == {"alexnet-module-4MBps-none"}, "none of the kept spool"
        assert spools[0].read_text() == kept, "a new sweep leaves another's kept spool alone"
        filler.unlink()
        resumed = _resume(hosts_dir, manifest, out)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        _complete(pd.read_parquet(out / "records.parquet"))
        assert _left_behind(hosts_dir) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)


BAD_INPUT = [
    (["sweep", "manifests/nothere.yml"], "manifest manifests/nothere.yml does not exist"),
    (
        ["sweep", "manifests/alexnet.yml", "--set", "repeat=2"],
        "--set 'repeat': manifests/alexnet.yml has no variable of that name "
        "(its variables: bandwidth, codec, compression,",
    ),
    (["sweep", "manifests/alexnet.yml", "-i", "inventory/nothere"], "inventory inventory/nothere does not exist"),
    (["sweep", "manifests/alexnet.yml", "-i", "{lab}"], "the virtual lab is not up: run `harness lab up`"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=["missing", "unused-set", "no-inventory", "lab-down"])
def test_bad_input_starts_nothing(hosts_dir, tmp_path, args, message):
    """The lab case makes a lab inventory of its own whose lab was never brought up, so the verdict
    does not depend on which labs this machine has or had."""
    lab_inventory = tmp_path / "vlab"
    (lab_inventory / "group_vars").mkdir(parents=True)
    write_lab_inventory(LabSpec(), tmp_path / "lab-state", lab_inventory, "hlab-observer1")
    done = harness(hosts_dir, *(arg.format(lab=lab_inventory) for arg in args))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: ") and message in lines[0], lines
    assert not (hosts_dir / HOSTS_SUBDIR).exists()


def test_a_group_the_inventory_lacks(hosts_dir, tmp_path):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  children:\n    edge:\n      hosts:\n        edge-local:\n")
    done = harness(hosts_dir, "sweep", "manifests/alexnet.yml", "-i", str(inventory))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"harness: error: inventory {inventory} has no hosts in group 'cloud' (hosts.cloud); it has: edge"
    )


def test_user_model_partitioner_and_task_are_shipped_and_used(hosts_dir, tmp_path):
    out = tmp_path / "results"
    done = harness(hosts_dir, "sweep", "tests/fixtures/manifests/extensions.yml", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    records = pd.read_csv(out / "records.csv")
    assert list(zip(records["cut"], records["repeat"], strict=True)) == [(3, 0), (0, 0), (0, 1), (3, 1)]
    assert list(records["input"]) == [0, 0, 1, 1]
    tasks = [json.loads(text) for text in records["task"]]
    assert all(set(task) == {"label", "probability"} and 0 <= task["label"] < 10 for task in tasks)
    assert tasks[0]["label"] == tasks[1]["label"], "the same input gives the same class at every cut"
    assert (hosts_dir / HOSTS_SUBDIR / "cloud-local" / "experiments" / "tasks.py").is_file()


def test_a_weights_file_here_is_shipped_to_every_host_and_loaded_there(hosts_dir, tmp_path):
    """The file exists only on the controller: each host gets a copy in its weights/ folder, the edge
    and the worker load it (their weights digests must agree, and the worker serves weights only
    from there), and the outputs are the file's model's."""
    torch.manual_seed(11)
    weights = tmp_path / "skipnet.pt"
    torch.save(SkipNet().state_dict(), weights)
    out = tmp_path / "results"
    manifest = "tests/fixtures/manifests/extensions.yml"
    done = harness(hosts_dir, "sweep", manifest, "--set", f"weights={weights}", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    for host in ("edge-local", "cloud-local"):
        shipped = hosts_dir / HOSTS_SUBDIR / host / "weights" / f"{digest}-skipnet.pt"
        assert shipped.read_bytes() == weights.read_bytes(), host
    loaded = load_model("experiments.models:tiny_skipnet", str(weights))
    inputs = load_inputs(DatasetSpec(name="synthetic", count=2), loaded.input_shape)
    records = pd.read_csv(out / "records.csv")
    for row in records.itertuples():
        with torch.no_grad():
            expected = top1(loaded.module(inputs[row.input]), row.input)
        assert json.loads(row.task) == expected, row


def test_partitioners_are_judged_against_the_sweep(hosts_dir, tmp_path):
    out = tmp_path / "results"
    sets = ("--set", "repeats=2", "--set", "cuts=[0,3,13,22]", "--set", 'bandwidths=["1MB/s"]')
    done = harness(
        hosts_dir, "sweep", "manifests/neurosurgeon.yml", *sets, "--set", f"port={free_port()}", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = pd.read_csv(out / "summary.csv").set_index("cut")["total_ms_median"]
    decisions = pd.read_csv(out / "decisions.csv").set_index("partitioner")
    assert list(decisions.index) == ["neurosurgeon", "neurosurgeon criterion=next-layer", "dads", "oracle"]
    assert set(decisions["cut"]) <= {0, 3, 13, 22}
    best = int(summary.idxmin())
    assert decisions.loc["oracle", "cut"] == best and decisions.loc["oracle", "regret"] == 1.0
    for name, row in decisions.iterrows():
        assert row["measured_ms"] == pytest.approx(summary[row["cut"]]), name
        assert row["regret"] == pytest.approx(summary[row["cut"]] / summary[best]), name
        assert row["argmin_regret"] == pytest.approx(summary[row["argmin"]] / summary[best]), name
        assert pd.isna(row["p_slower"]) if row["cut"] == best else 0 < row["p_slower"] <= 1, name
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert len(predictions) == 4 * 4 and predictions.groupby("partitioner")["picked"].sum().eq(1).all()
    predicted_dads = predictions[predictions["partitioner"] == "dads"].set_index("cut")["predicted_ms"]
    assert decisions.loc["dads", "cut"] == predicted_dads.idxmin()
    run = "alexnet-module-1MBps-none"
    assert (out / f"predicted_by_cut_{run}.png").is_file()
    page = (out / "report.html").read_text()
    assert "Partitioners&#x27; regret" in page or "Partitioners' regret" in page
    assert '<th class="num">p slower</th>' in page
    assert _left_behind(hosts_dir) == []
