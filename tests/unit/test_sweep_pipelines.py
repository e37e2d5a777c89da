"""Sweeps over tiers, before and after the hosts: which pipelines are measured where, what is refused
at its line, how records and hops travel and resume, and what an older records file still reads."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import BadInput
from harness.manifest import load_manifest
from harness.results import InferenceRecord, ResultsFolder
from harness.results.records import HopRecord
from harness.results.writer import RecordWriter, convert_records, read_hops, write_hops
from harness.sweep.controller import RecordCollector, pipeline_variables, sweep_pipeline_variables, tier_variables
from harness.sweep.observer import RecordReceiver, RecordSender
from harness.sweep.pipelines import Choice, Pipeline, SweepPipelines, choose_pipelines
from harness.sweep.resume import Recorded, record_key, recorded
from harness.sweep.topology import topology
from tests.fixtures.records import inference

TIERS = """\
name: tiers
hosts: {tiers: [rpi, jetson, gpu]}
model: {name: alexnet}
cuts: [[3, 13], [5, 20]]
link: {rate: 4MB/s, shaping: emulated}
"""


def _write(tmp_path: Path, text: str, name: str = "tiers.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _inventory(tmp_path: Path, jetson_vars: str = "", shaping: str = "emulated") -> Path:
    directory = tmp_path / "inventory"
    directory.mkdir()
    (directory / "hosts.yml").write_text(
        f"""all:
  vars: {{ansible_connection: local, harness_worker_address: 127.0.0.1, harness_link_shaping: {shaping}}}
  children:
    rpi: {{hosts: {{rpi1: {{}}, rpi2: {{}}}}}}
    jetson: {{hosts: {{jetson1: {{{jetson_vars}}}}}}}
    gpu: {{hosts: {{gpu1: {{}}}}}}
"""
    )
    return directory


def _chosen() -> SweepPipelines:
    return SweepPipelines(
        runs={
            "a": [Pipeline("rpi1", (3, 13), ("jetson1", "gpu1")), Pipeline("rpi1", (), ())],
            "b": [Pipeline("rpi1", (0,), ("gpu1",))],
        },
        choices=[
            Choice("a", "dp", "rpi1>3>jetson1>13>gpu1", 12.5, "optimal", 1.0, 0.0),
            Choice("a", "device-only", "rpi1", 40.0, "heuristic", 0.1, 2.2),
            Choice("b", "cloud-only", "rpi1>0>gpu1", 80.0, "heuristic", 0.1, None),
        ],
    )


def test_a_pipeline_is_named_by_its_hosts_and_the_cuts_between_them():
    assert Pipeline("rpi1", (3, 13), ("jetson1", "gpu1")).label == "rpi1>3>jetson1>13>gpu1"
    assert Pipeline("rpi1", (), ()).label == "rpi1"
    chosen = _chosen()
    assert chosen.source == "rpi1"
    assert chosen.workers == ["jetson1", "gpu1"]
    assert chosen.next_hops() == {"jetson1": ["gpu1"], "gpu1": []}


def test_the_chosen_pipelines_survive_the_results_folder(tmp_path):
    chosen = _chosen()
    assert SweepPipelines.read(chosen.write(tmp_path / "pipelines.json")) == chosen
    (tmp_path / "broken.json").write_text('{"runs": {}}')
    with pytest.raises(BadInput, match=r"broken.json: cannot be read \('choices'\); expected the pipelines"):
        SweepPipelines.read(tmp_path / "broken.json")


def test_workers_on_one_address_take_consecutive_ports_and_know_their_next_hops(tmp_path):
    loaded = load_manifest(_write(tmp_path, TIERS))
    variables = sweep_pipeline_variables(_inventory(tmp_path), loaded, _chosen())
    assert variables["harness_sweep_hosts"] == "rpi1,jetson1,gpu1"
    assert variables["harness_drivers"] == ["rpi1"]
    assert variables["harness_workers"] == {"jetson1": 5555, "gpu1": 5556}
    assert variables["harness_worker_peers"] == {"jetson1": ["tcp://127.0.0.1:5556"], "gpu1": []}
    assert variables["plan"]["workers"] == {"jetson1": "tcp://127.0.0.1:5555", "gpu1": "tcp://127.0.0.1:5556"}
    assert variables["plan"]["pipelines"]["a"][0] == {
        "label": "rpi1>3>jetson1>13>gpu1",
        "cuts": [3, 13],
        "workers": ["jetson1", "gpu1"],
    }


def test_a_phase_on_its_own_reaches_every_tier_host(tmp_path):
    loaded = load_manifest(_write(tmp_path, TIERS))
    inventory = _inventory(tmp_path)
    expected = pipeline_variables(inventory, loaded, "rpi1", ["jetson1", "gpu1"], {"jetson1": ["gpu1"], "gpu1": []})
    assert tier_variables(inventory, loaded) == expected
    assert expected["harness_sweep_hosts"] == "rpi1,jetson1,gpu1", "rpi2 runs nothing: the edge is the first host"


def test_dry_run_refuses_a_pipeline_larger_than_a_hosts_memory_at_its_line(tmp_path):
    path = _write(tmp_path, TIERS)
    inventory = _inventory(tmp_path, "harness_memory_bytes: 1000")
    result = CliRunner().invoke(cli, ["sweep", "--dry-run", str(path), "-i", str(inventory)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"harness: error: {path}:4: field cuts[0]: pipeline [3, 13]: segments 4..13 need 9785600 B on jetson1, "
        "which has 1000 B\n"
    )


def test_a_tier_group_the_inventory_lacks_is_refused(tmp_path):
    path = _write(tmp_path, TIERS.replace("[rpi, jetson, gpu]", "[rpi, tpu, gpu]"))
    result = CliRunner().invoke(cli, ["sweep", "--dry-run", str(path), "-i", str(_inventory(tmp_path))])
    assert result.exit_code == 2 and "tpu" in result.stderr and str(tmp_path / "inventory") in result.stderr


def test_tc_shaping_of_a_sweep_over_tiers_is_refused_at_the_link(tmp_path):
    loaded = load_manifest(_write(tmp_path, TIERS.replace(", shaping: emulated", "")))
    with pytest.raises(BadInput) as error:
        topology(_inventory(tmp_path, shaping="tc"), loaded)
    assert str(error.value).startswith(f"{loaded.rendered.path}:5: field link.shaping: edge host rpi1 of inventory")
    assert str(error.value).endswith("a sweep over tiers paces every hop itself (expected shaping: emulated)")


@pytest.mark.parametrize(
    ("evaluate", "message"),
    [
        ("[neurosurgeon]", "field evaluate[0].name: expected one of cloud-only, device-only, dp, even-split, "),
        ("[{name: dp, cut: 3}]", "field evaluate[0].cut: expected no cut: a placement strategy over tiers takes"),
    ],
)
def test_evaluate_over_tiers_names_placement_strategies(tmp_path, evaluate, message):
    path = _write(tmp_path, TIERS.replace("cuts: [[3, 13], [5, 20]]", f"placement: dp\nevaluate: {evaluate}"))
    with pytest.raises(BadInput, match=re.escape(message)):
        load_manifest(path)


def test_options_are_refused_beside_a_partitioner_of_two_groups(tmp_path):
    path = _write(
        tmp_path, "name: x\nmodel: {name: alexnet}\nlink: {rate: 4MB/s}\nevaluate: [{name: oracle, options: {a: 1}}]\n"
    )
    with pytest.raises(BadInput, match=r":4: field evaluate\[0\].options: expected no options: options are for"):
        load_manifest(path)


def make_record(pipeline: str = "", repeat: int = 0) -> InferenceRecord:
    return inference(
        run="a", cut=3, repeat=repeat, layer="features.2", edge_ns=5, transfer_ns=7, cloud_ns=11, pipeline=pipeline
    )


def _hop(pipeline: str, repeat: int, hop: int, host: str) -> HopRecord:
    return HopRecord(
        run="a",
        request=repeat + 1,
        hop=hop,
        endpoint=f"tcp://127.0.0.1:{5554 + hop}",
        start_cut=3,
        end_cut=-1,
        decode_ns=1,
        compute_ns=2,
        encode_ns=3,
        busy_ns=7,
        bytes_raw=100,
        bytes_wire=120,
        host=host,
        pipeline=pipeline,
        repeat=repeat,
    )


def test_records_travel_with_their_hops_and_a_bad_hop_is_refused():
    receiver = RecordReceiver()
    sender = RecordSender(receiver.endpoint, "rpi1")
    try:
        record = make_record(pipeline="rpi1>3>gpu1")
        hops = [_hop("rpi1>3>gpu1", 0, 1, "gpu1")]
        sender.record(record, hops)
        sender.socket.send(
            json.dumps(
                {"kind": "record", "host": "rpi1", "record": record.as_dict(), "hops": [{"hop": "one"}]}
            ).encode()
        )
        received = []
        while len(received) < 2:
            received += receiver.receive(2000)
    finally:
        sender.close()
        receiver.close()
    assert received[0].record == record and received[0].hops == hops
    assert received[1].record is None and received[1].problem.startswith("field ")


def test_the_spools_fill_the_streams_gaps_with_their_hops_and_a_resume_skips_them(tmp_path):
    folder = ResultsFolder(tmp_path / "r")
    spool = folder.path / "hosts" / "rpi1"
    spool.mkdir(parents=True)
    records = [make_record(pipeline="rpi1>3>gpu1", repeat=repeat) for repeat in range(2)]
    records.append(make_record(pipeline="rpi1", repeat=0))
    (spool / "records.jsonl").write_text("".join(json.dumps(item.as_dict()) + "\n" for item in records))
    hops = [_hop("rpi1>3>gpu1", repeat, 1, "gpu1") for repeat in range(2)]
    (spool / "hops.jsonl").write_text("".join(json.dumps(item.as_dict()) + "\n" for item in hops))

    class Quiet:
        def recorded(self, record):
            pass

    with RecordWriter(folder) as writer:
        collector = RecordCollector(writer, Quiet(), "gpu1", Recorded())
        collector.add_spooled(folder.path)
        collector.add(records[0], hops[:1])
    assert collector.hops == hops
    write_hops(folder, collector.hops)
    assert read_hops(folder) == hops
    found = recorded(folder)
    assert found.keys == {("a", "rpi1>3>gpu1", 0), ("a", "rpi1>3>gpu1", 1), ("a", "rpi1", 0)}
    assert found.hops == hops
    assert found.plan()["done"] == {"a": [("rpi1", 0), ("rpi1>3>gpu1", 0), ("rpi1>3>gpu1", 1)]}
    assert record_key("a", 3, "", 1) == ("a", 3, 1)


def test_records_written_before_pipelines_existed_still_convert(tmp_path):
    folder = ResultsFolder(tmp_path / "old")
    fields = list(InferenceRecord.__dataclass_fields__)
    values = make_record().as_dict()
    old = fields[: fields.index("pipeline")]
    folder.records_csv.write_text(",".join(old) + "\n" + ",".join(str(values[name]) for name in old) + "\n")
    table = pd.read_parquet(convert_records(folder))
    assert list(table.columns) == fields and list(table["pipeline"]) == [""] and list(table["exit"]) == [0]
    assert table["confidence"].isna().all() and list(table["exit_host"]) == [""]
    folder.records_csv.write_text("run,cut\na,1\n")
    with pytest.raises(BadInput, match="header is run,cut; expected run,model,"):
        convert_records(folder)


ADAPTING = TIERS.replace("cuts: [[3, 13], [5, 20]]", "placement: dp\nadapt: {every_s: 2, min_gain: 0.2}")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("placement: dp\n", ""), ":4: field adapt: expected a placement beside adapt: re-planning solves"),
        (("adapt: {every_s: 2, min_gain: 0.2}", "adapt: {every_s: 0}"), ":5: field adapt.every_s: "),
        (("adapt: {every_s: 2, min_gain: 0.2}", "adapt: {min_gain: 1}"), ":5: field adapt.min_gain: "),
        (
            ("link: {", "link_events: [{at_s: 5, pair: [rpi, tpu], rate: 1MB/s}]\nlink: {"),
            ":6: field link_events[0].pair: expected two different tier groups of rpi, jetson, gpu "
            "(got ['rpi', 'tpu'])",
        ),
        (
            ("link: {", "link_events: [{at_s: 5, pair: [gpu, gpu], rate: 1MB/s}]\nlink: {"),
            ":6: field link_events[0].pair: expected two different tier groups",
        ),
        (
            (", shaping: emulated}", "}\nlink_events: [{at_s: 5, pair: [rpi, gpu], rate: 1MB/s}]"),
            ":6: field link: expected shaping: emulated beside link_events",
        ),
        (("placement: dp\n", "placement: dp\nevaluate: [genetic]\n"), ": field evaluate: expected no evaluate beside"),
    ],
)
def test_re_planning_and_link_events_are_refused_at_their_line(tmp_path, change, message):
    path = _write(tmp_path, ADAPTING.replace(*change))
    with pytest.raises(BadInput, match=re.escape(message)):
        load_manifest(path)


def test_link_events_need_a_sweep_over_tiers(tmp_path):
    text = "name: x\nmodel: {name: alexnet}\nlink: {rate: 4MB/s, shaping: emulated}\n"
    path = _write(tmp_path, text + "link_events: [{at_s: 1, pair: [edge, cloud], rate: 1MB/s}]\n")
    with pytest.raises(BadInput, match=r":4: field link_events: expected hosts.tiers and a placement or pipelines"):
        load_manifest(path)


def test_a_run_that_re_plans_runs_a_worker_on_every_tier_host_each_allowed_to_probe_the_others(tmp_path):
    loaded = load_manifest(
        _write(tmp_path, ADAPTING.replace("link:", "link_events: [{at_s: 3, pair: [rpi, gpu], rate: 1MB/s}]\nlink:"))
    )
    inventory = _inventory(tmp_path, "harness_memory_bytes: 20000000")
    chosen = choose_pipelines(loaded, inventory, repeats=1)
    ((run, adapt),) = chosen.adapt.items()
    assert chosen.hosts == ["rpi1", "rpi2", "jetson1", "gpu1"] == [host["name"] for host in adapt["hosts"]]
    assert adapt["workers"] == {
        "rpi1": "tcp://127.0.0.1:5555",
        "rpi2": "tcp://127.0.0.1:5556",
        "jetson1": "tcp://127.0.0.1:5557",
        "gpu1": "tcp://127.0.0.1:5558",
    }
    assert adapt["events"] == [
        {"at_s": 3.0, "pairs": [["rpi1", "gpu1"], ["rpi2", "gpu1"], ["gpu1", "rpi1"], ["gpu1", "rpi2"]], "rate": 1e6}
    ]
    assert (adapt["min_gain"], adapt["rounds"], adapt["every_s"], adapt["probe_bytes"]) == (0.2, 2, 2.0, 256 * 1024)
    assert [host["memory_bytes"] for host in adapt["hosts"]] == [None, None, 20000000.0, None]
    variables = sweep_pipeline_variables(inventory, loaded, chosen)
    assert variables["harness_sweep_hosts"] == "rpi1,rpi2,jetson1,gpu1"
    assert variables["harness_drivers"] == ["rpi1"]
    assert variables["harness_worker_peers"]["jetson1"] == [
        "tcp://127.0.0.1:5555",
        "tcp://127.0.0.1:5556",
        "tcp://127.0.0.1:5558",
    ]
    assert variables["plan"]["adapt"][run] == adapt
    assert SweepPipelines.read(chosen.write(tmp_path / "p.json")) == chosen


def test_a_teardown_of_a_manifest_that_re_plans_stops_the_worker_on_every_host(tmp_path):
    loaded = load_manifest(_write(tmp_path, ADAPTING))
    variables = tier_variables(_inventory(tmp_path), loaded)
    assert list(variables["harness_workers"]) == ["rpi1", "rpi2", "jetson1", "gpu1"]
    assert variables["harness_drivers"] == ["rpi1"]
