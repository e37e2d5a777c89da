"""Results catalog: folders built by hand are registered, listed, shown, compared and queried exactly."""

import json
import logging
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from click.testing import CliRunner

from harness.ansible.project import ROOT
from harness.cli import cli
from harness.errors import ExperimentFailed
from harness.manifest import load_manifest
from harness.results import InferenceRecord, RecordWriter, ResultsFolder, write_layers
from harness.results.catalog import CATALOG_FILE, Catalog
from harness.sweep import controller
from tests.fixtures.records import inference

MS = 1_000_000
RUN = "alexnet-module-4MBps-none"
LAYERS = ["input", "features.2", "classifier.6"]
# Per cut: head, transfer and tail; repeat r (of 3) adds r ms to the head, so each median head is +1 ms.
# Median end-to-end per cut: 161, 57 and 62 ms; of all nine inferences: 62 ms. Best cut 1.
EDGE = [0, 20 * MS, 60 * MS]
TRANSFER = [150 * MS, 30 * MS, 1 * MS]
TAIL = [10 * MS, 6 * MS, 0]
REPEATS = 3
START = datetime(2026, 11, 24, 4, 19, 30, tzinfo=UTC)
ENVIRONMENT = {
    "controller": {"platform": "Linux-6.1-x86_64", "python": "3.11.7"},
    "git": {"dirty": False, "revision": "2a713025a1b9c50f4a21230fb373926785a57ab7"},
    "hosts": {
        "gpu1": {"arch": "x86_64", "cores": 2, "harness": "0.1.0", "python": "3.11.7", "torch": "2.13.0+cpu"},
        "rpi1": {"arch": "x86_64", "cores": 2, "harness": "0.1.0", "python": "3.11.7", "torch": "2.13.0+cpu"},
    },
    "inventory": "inventory/vlab",
    "links": {"rpi1": {"shaping": "tc", "links": [{"delay": "0ms", "rate": "4MB/s", "shaping": "auto"}]}},
    "packages": {"split-harness": "0.1.0", "torch": "2.13.0+cpu", "duckdb": None},
}


def record(cut: int, repeat: int, transfer_scale: int, start_ns: int, run: str = RUN) -> InferenceRecord:
    return inference(
        run=run,
        cut=cut,
        layer=LAYERS[cut],
        repeat=repeat,
        request=REPEATS * cut + repeat,
        edge_ns=EDGE[cut] + repeat * MS,
        transfer_ns=TRANSFER[cut] * transfer_scale,
        cloud_ns=TAIL[cut],
        bytes_raw=1000,
        bytes_wire=1100,
        reply_bytes_wire=4200,
        shaping="tc",
        rate=0.0,
        started_at_ns=start_ns + (REPEATS * cut + repeat) * 1_000 * MS,
    )


def make_sweep(
    root: Path,
    name: str,
    *,
    manifest: str = "alexnet",
    transfer_scale: int = 1,
    hours: int = 0,
    records: bool = True,
    run: str = RUN,
) -> Path:
    """A results folder as a sweep leaves it; ``hours`` after START, nine inferences a second apart."""
    folder = ResultsFolder(root / name)
    folder.write_manifest(f"name: {manifest}\ndescription: by hand\n")
    start_ns = int(START.timestamp() * 1e9) + hours * 3600 * 1_000 * MS
    ended = datetime.fromtimestamp(start_ns / 1e9 + 20, UTC)
    folder.write_environment(ENVIRONMENT | {"written_at": ended.isoformat(timespec="seconds")})
    if records:
        with RecordWriter(folder) as writer:
            for cut in range(3):
                for repeat in range(REPEATS):
                    writer.append(record(cut, repeat, transfer_scale, start_ns, run))
    return folder.path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def table_rows(output: str) -> list[str]:
    """The body lines of the rich tables printed, without their borders, titles and captions."""
    return [line.strip() for line in output.splitlines() if line.startswith("│")]


@pytest.fixture
def two_sweeps(tmp_path) -> Path:
    """A (ok) then B (ok, an hour later, transfer twice as slow): B's medians 311, 87 and 63 ms."""
    catalog = Catalog(tmp_path)
    catalog.register(make_sweep(tmp_path, "alexnet-a"), status="ok", manifest_path="manifests/alexnet.yml")
    catalog.register(make_sweep(tmp_path, "alexnet-b", transfer_scale=2, hours=1), status="ok")
    return tmp_path


def test_register_records_the_folder_and_its_figures(two_sweeps):
    entry = Catalog(two_sweeps).entry("alexnet-a")
    assert entry == {
        "run_id": "alexnet-a",
        "folder": (two_sweeps / "alexnet-a").resolve(),
        "manifest": "alexnet",
        "manifest_path": "manifests/alexnet.yml",
        "inventory": "inventory/vlab",
        "hosts": ["gpu1", "rpi1"],
        "edge_hosts": ["rpi1"],
        "cloud_hosts": ["gpu1"],
        "versions": {
            "python": "3.11.7",
            "split-harness": "0.1.0",
            "torch": "2.13.0+cpu",
            "gpu1.harness": "0.1.0",
            "gpu1.python": "3.11.7",
            "gpu1.torch": "2.13.0+cpu",
            "rpi1.harness": "0.1.0",
            "rpi1.python": "3.11.7",
            "rpi1.torch": "2.13.0+cpu",
        },
        "git_revision": "2a713025a1b9c50f4a21230fb373926785a57ab7",
        "git_dirty": False,
        "status": "ok",
        "started_at": datetime(2026, 11, 24, 4, 19, 30),
        "ended_at": datetime(2026, 11, 24, 4, 19, 50),
        "rows": 9,
        "expected": 9,
        "median_e2e_ms": 62.0,
        "registered_at": entry["registered_at"],
        "runs": [
            {
                "run": RUN,
                "rows": 9,
                "cuts": 3,
                "best_cut": 1,
                "best_layer": "features.2",
                "best_e2e_ms": 57.0,
                "median_e2e_ms": 62.0,
                "best_pipeline": "",
            }
        ],
    }
    assert abs(entry["registered_at"] - datetime.now(UTC).replace(tzinfo=None)).total_seconds() < 60
    assert (two_sweeps / CATALOG_FILE).is_file()
    assert not list(two_sweeps.glob("*.parquet")), "records stay in their folders"


def test_ls_lists_newest_first_and_filters_by_manifest(two_sweeps):
    Catalog(two_sweeps).register(make_sweep(two_sweeps, "resnet-c", manifest="resnet", hours=2), status="failed")
    result = invoke("results", "ls", "--root", str(two_sweeps))
    assert result.exit_code == 0
    assert table_rows(result.output) == [
        "│ resnet-c  │ resnet   │ failed │ 2026-11-24 06:19:30 │ 20 s │ rpi1 → gpu1 "
        " │  9/- │ cut 1 features.2, 57.00 ms   │",
        "│ alexnet-b │ alexnet  │ ok     │ 2026-11-24 05:19:30 │ 20 s │ rpi1 → gpu1 "
        " │  9/9 │ cut 2 classifier.6, 63.00 ms │",
        "│ alexnet-a │ alexnet  │ ok     │ 2026-11-24 04:19:30 │ 20 s │ rpi1 → gpu1 "
        " │  9/9 │ cut 1 features.2, 57.00 ms   │",
    ]
    assert f"{two_sweeps / CATALOG_FILE}: 3 registered, newest first" in result.output
    listed = json.loads(invoke("results", "ls", "--root", str(two_sweeps), "--manifest", "alexnet", "--json").output)
    assert [(entry["run_id"], entry["status"], entry["started_at"]) for entry in listed] == [
        ("alexnet-b", "ok", "2026-11-24T05:19:30"),
        ("alexnet-a", "ok", "2026-11-24T04:19:30"),
    ]
    assert listed[0]["folder"] == str((two_sweeps / "alexnet-b").resolve())


def test_show_prints_the_entry_and_medians_per_cut(two_sweeps):
    result = invoke("results", "show", "alexnet-b", "--root", str(two_sweeps))
    assert result.exit_code == 0
    rows = table_rows(result.output)
    assert rows[-3:] == [
        "│ alexnet-module-4MBps-none │   0 │ input        │ 3 │  1.00 │   300.00 │ 10.00 │ 311.00 │      │",
        "│ alexnet-module-4MBps-none │   1 │ features.2   │ 3 │ 21.00 │    60.00 │  6.00 │  87.00 │      │",
        "│ alexnet-module-4MBps-none │   2 │ classifier.6 │ 3 │ 61.00 │     2.00 │  0.00 │  63.00 │ best │",
    ]
    assert "│ hosts         │ rpi1 → gpu1" in result.output
    assert "│ rows          │ 9/9" in result.output
    shown = json.loads(invoke("results", "show", "alexnet-b", "--root", str(two_sweeps), "--json").output)
    assert shown["entry"]["runs"][0]["best_cut"] == 2
    assert [(cut["cut"], cut["n"], cut["total_ms_median"]) for cut in shown["cuts"]] == [
        (0, 3, 311.0),
        (1, 3, 87.0),
        (2, 3, 63.0),
    ]


def test_a_sweep_over_tiers_has_medians_per_pipeline_and_its_best_pipeline(tmp_path):
    """Two pipelines leave the edge at cut 1; the one through the Jetson pays 30 ms more on the workers."""
    folder = ResultsFolder(tmp_path / "tiers")
    folder.write_manifest("name: tiers\n")
    pipelines = {"rpi1>1>gpu1": 0, "rpi1>1>jetson1>2>gpu1": 30 * MS}
    with RecordWriter(folder) as writer:
        for pipeline, extra in pipelines.items():
            for repeat in range(REPEATS):
                writer.append(
                    inference(
                        run=RUN,
                        cut=1,
                        layer="features.2",
                        repeat=repeat,
                        edge_ns=EDGE[1],
                        transfer_ns=TRANSFER[1],
                        cloud_ns=TAIL[1] + extra,
                        pipeline=pipeline,
                    )
                )
    catalog = Catalog(tmp_path)
    catalog.register(folder.path, status="ok")
    (run,) = catalog.entry("tiers")["runs"]
    assert (run["cuts"], run["best_pipeline"], run["best_cut"], run["best_e2e_ms"]) == (2, "rpi1>1>gpu1", 1, 56.0)
    rows = table_rows(invoke("results", "show", "tiers", "--root", str(tmp_path)).output)
    assert rows[-2:] == [
        "│ alexnet-module-4MBps-none │   1 │ features.2 of rpi1>1>gpu1           │ 3 │ 20.00 │    30.00 │  6.00 │ "
        "56.00 │ best │",
        "│ alexnet-module-4MBps-none │   1 │ features.2 of rpi1>1>jetson1>2>gpu1 │ 3 │ 20.00 │    30.00 │ 36.00 │ "
        "86.00 │      │",
    ]
    listed = invoke("results", "ls", "--root", str(tmp_path)).output
    assert "pipeline rpi1>1>gpu1, 56.00 ms" in listed, listed


def test_a_catalog_written_before_pipelines_reads_and_gains_the_column_when_written(two_sweeps):
    with duckdb.connect(str(two_sweeps / CATALOG_FILE)) as connection:
        connection.execute("ALTER TABLE sweep_runs DROP COLUMN best_pipeline")
    assert Catalog(two_sweeps).entry("alexnet-a")["runs"][0]["best_pipeline"] == ""
    Catalog(two_sweeps).register(two_sweeps / "alexnet-a", status="ok")
    assert [run["best_cut"] for run in Catalog(two_sweeps).entry("alexnet-b")["runs"]] == [2]
    assert Catalog(two_sweeps).query("SELECT best_pipeline FROM sweep_runs")["best_pipeline"].tolist() == ["", ""]


def test_show_of_a_sweep_without_records(tmp_path):
    Catalog(tmp_path).register(make_sweep(tmp_path, "broken", records=False), status="failed")
    result = invoke("results", "show", "broken", "--root", str(tmp_path))
    assert result.exit_code == 0
    assert "│ rows          │ 0/-" in result.output
    assert result.output.endswith("broken recorded no inferences\n")


def test_compare_prints_ratios_and_writes_a_png(two_sweeps, tmp_path):
    result = invoke("results", "compare", "alexnet-a", "alexnet-b", "--root", str(two_sweeps))
    assert result.exit_code == 0
    chart = (two_sweeps / "alexnet-b" / "compare-alexnet-a.png").resolve()
    assert table_rows(result.output) == [
        "│ alexnet-module-4MBps-none │   0 │ input        │ 161.00 │ 311.00 │ 1.932 │",
        "│ alexnet-module-4MBps-none │   1 │ features.2   │  57.00 │  87.00 │ 1.526 │",
        "│ alexnet-module-4MBps-none │   2 │ classifier.6 │  62.00 │  63.00 │ 1.016 │",
    ]
    assert result.output.splitlines()[-1] == str(chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    elsewhere = invoke(
        "results", "compare", "alexnet-b", "alexnet-a", "--root", str(two_sweeps), "--out", str(tmp_path / "charts")
    )
    assert elsewhere.output.splitlines()[-1] == str(tmp_path / "charts" / "compare-alexnet-b.png")
    assert "│ alexnet-module-4MBps-none │   0 │ input        │ 311.00 │ 161.00 │ 0.518 │" in elsewhere.output


def test_compare_refuses_sweeps_without_a_common_run(two_sweeps):
    Catalog(two_sweeps).register(make_sweep(two_sweeps, "other-link", run="alexnet-module-1MBps-none"), status="ok")
    result = invoke("results", "compare", "alexnet-a", "other-link", "--root", str(two_sweeps))
    assert result.exit_code == 2
    assert result.output == (
        "harness: error: sweeps 'alexnet-a' (runs alexnet-module-4MBps-none) and 'other-link' (runs "
        "alexnet-module-1MBps-none) share no run and cut; expected two sweeps of the same runs\n"
    )
    assert not list((two_sweeps / "other-link").glob("compare-*.png"))


def test_host_roles_come_from_layers_when_written(tmp_path):
    folder = make_sweep(tmp_path, "with-layers")
    environment = json.loads((folder / "environment.json").read_text())
    del environment["links"]
    ResultsFolder.open(folder).write_environment(environment)
    layer = {"run": RUN, "model": "alexnet", "layer": "features.0", "op": "Conv2d", "median_ns": 1, "p95_ns": 2}
    rows = [layer | {"host": host, "role": role, "repeats": 5} for host, role in (("rpi1", "edge"), ("gpu1", "cloud"))]
    write_layers(ResultsFolder.open(folder), rows)
    Catalog(tmp_path).register(folder, status="ok")
    entry = Catalog(tmp_path).entry("with-layers")
    assert (entry["hosts"], entry["edge_hosts"], entry["cloud_hosts"]) == (["gpu1", "rpi1"], ["rpi1"], ["gpu1"])
    (folder / "layers.parquet").unlink()
    Catalog(tmp_path).register(folder, status="ok")
    entry = Catalog(tmp_path).entry("with-layers")
    assert (entry["hosts"], entry["edge_hosts"], entry["cloud_hosts"]) == (["gpu1", "rpi1"], [], [])


def test_sql_reads_records_in_place_with_their_run_id(two_sweeps):
    query = "SELECT run_id, cut, median(e2e_ns) / 1e6 AS e2e_ms FROM records WHERE cut = 0 GROUP BY ALL ORDER BY ALL"
    result = invoke("results", "sql", query, "--root", str(two_sweeps))
    assert result.exit_code == 0
    assert table_rows(result.output) == [
        "│ alexnet-a │ 0   │ 161.0  │",
        "│ alexnet-b │ 0   │ 311.0  │",
    ]
    refused = invoke("results", "sql", "DELETE FROM sweeps", "--root", str(two_sweeps))
    assert refused.exit_code == 2
    assert refused.output.startswith(f"harness: error: query on {two_sweeps / CATALOG_FILE} failed: ")
    assert len(Catalog(two_sweeps).entries()) == 2


def test_records_view_is_empty_without_records_and_sql_needs_a_catalog(tmp_path):
    missing = invoke("results", "sql", "SELECT 1", "--root", str(tmp_path))
    assert missing.exit_code == 2
    assert missing.output.startswith(f"harness: error: {tmp_path / CATALOG_FILE} does not exist; expected a results")
    Catalog(tmp_path).register(make_sweep(tmp_path, "no-records", records=False), status="failed")
    counted = Catalog(tmp_path).query("SELECT count(*) AS n, count(e2e_ns) AS e2e FROM records")
    assert counted.to_dict(orient="records") == [{"n": 0, "e2e": 0}]
    judged = Catalog(tmp_path).query("SELECT count(*) AS n, count(regret) AS regret FROM decisions")
    assert judged.to_dict(orient="records") == [{"n": 0, "regret": 0}]
    links = Catalog(tmp_path).query("SELECT count(*) AS n, count(rate_bytes_per_s) AS rates FROM links")
    assert links.to_dict(orient="records") == [{"n": 0, "rates": 0}]


def test_decisions_view_gathers_the_partitioners_of_every_sweep(two_sweeps):
    """A bandwidth grid under tc is one sweep per rate: one query lines their regrets up. A folder
    judged before p_slower was recorded reads it as NULL."""
    columns = ["run", "partitioner", "cut", "layer", "argmin", "argmin_regret", "predicted_ms", "measured_ms"]
    columns += ["best_cut", "best_ms", "regret", "p_slower", "decision_us", "note"]
    rows = {"alexnet-a": [RUN, "dads", 1, "features.2", 1, 1.0, 50.0, 57.0, 1, 57.0, 1.0, "", 900.0, ""]}
    rows["alexnet-b"] = [RUN, "neurosurgeon", 0, "input", 1, 1.05, 150.0, 311.0, 2, 63.0, 4.94, 0.001, 80.0, ""]
    for run_id, values in rows.items():
        kept = [(column, value) for column, value in zip(columns, values, strict=True)]
        if run_id == "alexnet-a":
            kept = [(column, value) for column, value in kept if column != "p_slower"]
        lines = [",".join(column for column, _ in kept), ",".join(str(value) for _, value in kept)]
        (two_sweeps / run_id / "decisions.csv").write_text("\n".join(lines) + "\n")
    grid = Catalog(two_sweeps).query("SELECT run_id, partitioner, cut, regret, p_slower FROM decisions ORDER BY run_id")
    assert grid.astype(object).where(grid.notna(), None).to_dict(orient="records") == [
        {"run_id": "alexnet-a", "partitioner": "dads", "cut": 1, "regret": 1.0, "p_slower": None},
        {"run_id": "alexnet-b", "partitioner": "neurosurgeon", "cut": 0, "regret": 4.94, "p_slower": 0.001},
    ]


def test_register_again_replaces_the_entry(two_sweeps):
    catalog = Catalog(two_sweeps)
    catalog.register(two_sweeps / "alexnet-a", status="resumed-ok")
    catalog.register(two_sweeps / "alexnet-a", status="resumed-ok")
    counts = catalog.query("SELECT (SELECT count(*) FROM sweeps) AS sweeps, (SELECT count(*) FROM sweep_runs) AS runs")
    assert counts.to_dict(orient="records") == [{"sweeps": 2, "runs": 2}]
    entry = catalog.entry("alexnet-a")
    assert (entry["status"], entry["manifest_path"], entry["expected"]) == ("resumed-ok", "", None)


def test_register_command_defaults_to_the_folders_parent(tmp_path):
    folder = make_sweep(tmp_path / "old", "before-the-catalog")
    result = invoke("results", "register", str(folder))
    assert result.exit_code == 0
    assert "│ status        │ ok" in result.output
    assert [entry["run_id"] for entry in Catalog(tmp_path / "old").entries()] == ["before-the-catalog"]


def test_latest_is_the_newest_of_a_manifest_with_a_status(two_sweeps):
    catalog = Catalog(two_sweeps)
    catalog.register(make_sweep(two_sweeps, "alexnet-failed", hours=3), status="failed")
    catalog.register(make_sweep(two_sweeps, "resnet-new", manifest="resnet", hours=4), status="ok")
    assert catalog.latest("alexnet") == (two_sweeps / "alexnet-b").resolve()
    assert catalog.latest("alexnet", exclude=two_sweeps / "alexnet-b") == (two_sweeps / "alexnet-a").resolve()
    assert catalog.latest("alexnet", status="failed") == (two_sweeps / "alexnet-failed").resolve()
    assert catalog.latest("alexnet", status="interrupted") is None
    assert catalog.latest("vgg16") is None
    assert Catalog(two_sweeps / "nothing-here").latest("alexnet") is None


def test_unknown_run_id_names_the_catalog_file(two_sweeps):
    result = invoke("results", "show", "nope", "--root", str(two_sweeps))
    assert result.exit_code == 2
    assert result.output == (
        f"harness: error: run id 'nope' is not in the results catalog {two_sweeps / CATALOG_FILE}; expected a "
        "results folder's name as `harness results ls` lists it (`harness results register DIR` adds a folder)\n"
    )


def test_a_catalog_that_cannot_be_written_only_warns(tmp_path, caplog):
    (tmp_path / CATALOG_FILE).mkdir()
    folder = make_sweep(tmp_path, "kept")
    with caplog.at_level(logging.WARNING):
        Catalog(tmp_path).register(folder, status="ok")
    assert f"{folder} was not registered in the results catalog: {tmp_path / CATALOG_FILE}: cannot open" in caplog.text
    assert sorted(path.name for path in folder.iterdir()) == [
        "environment.json",
        "manifest.rendered.yml",
        "records.csv",
        "records.parquet",
    ]


def test_a_catalog_locked_by_another_process_only_warns(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr("harness.results.catalog.LOCK_RETRY_SECONDS", (0.01, 0.01))
    Catalog(tmp_path).register(make_sweep(tmp_path, "first"), status="ok")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.read()",
            str(tmp_path / CATALOG_FILE),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with caplog.at_level(logging.WARNING):
            Catalog(tmp_path).register(make_sweep(tmp_path, "second"), status="ok")
        assert "second was not registered in the results catalog" in caplog.text
        assert "Could not set lock on file" in caplog.text
    finally:
        holder.communicate("")
    assert [entry["run_id"] for entry in Catalog(tmp_path).entries()] == ["first"]


@pytest.mark.parametrize(
    ("raised", "status"),
    [(None, "ok"), (controller.Interrupted, "interrupted"), (ExperimentFailed, "failed")],
)
def test_run_sweep_registers_its_folder_in_the_parent_catalog(tmp_path, monkeypatch, raised, status):
    def sweep(loaded, inventory, folder, *settings):
        if raised is not None:
            raise raised(f"stopped; records kept in {folder.path}")
        return controller.SweepOutcome(folder, 0, 5, [])

    monkeypatch.setattr(controller, "topology", lambda inventory, loaded: SimpleNamespace(needs_keys=False))
    monkeypatch.setattr(controller, "_sweep", sweep)
    manifest = ROOT / "manifests" / "alexnet.yml"
    loaded = load_manifest(manifest)
    out = tmp_path / "sweeps" / "run1"
    if raised is None:
        controller.run_sweep(loaded, Path("inventory/local"), out, console=None)
    else:
        with pytest.raises(raised, match="stopped"):
            controller.run_sweep(loaded, Path("inventory/local"), out, console=None)
    entry = Catalog(tmp_path / "sweeps").entry("run1")
    assert (entry["status"], entry["manifest"], entry["manifest_path"], entry["inventory"]) == (
        status,
        "alexnet",
        str(manifest),
        "inventory/local",
    )
    assert entry["expected"] == (5 if raised is None else None)
