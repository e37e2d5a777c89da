"""Manifests: rendering, validation with file and line in every error, the run matrix, the CLI."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import BadInput
from harness.manifest import Run, load_manifest

ALEXNET = Path("manifests/alexnet.yml")

MINIMAL = """\
name: tiny
model:
  name: alexnet
link:
  rate: 4MB/s
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.yml"
    path.write_text(text)
    return path


def error_of(path: Path, sets: list[str] | None = None) -> str:
    with pytest.raises(BadInput) as caught:
        load_manifest(path, sets or [])
    return str(caught.value)


def test_missing_manifest():
    assert error_of(Path("manifests/nothere.yml")) == "manifest manifests/nothere.yml does not exist"


def test_jinja_syntax_error_names_its_line(tmp_path):
    path = write(tmp_path, "name: x\n\n{% if %}\n")
    assert error_of(path) == f"{path}:3: Jinja syntax error: Expected an expression, got 'end of statement block'"


def test_undefined_variable_names_its_line(tmp_path):
    path = write(
        tmp_path, "{% set bandwidth = bandwidth | default('4MB/s') %}\nname: x\nlink:\n  rate: {{ bandwith }}\n"
    )
    assert error_of(path) == f"{path}:4: undefined variable 'bandwith'"


def test_unknown_field_names_its_line_and_the_fields(tmp_path):
    path = write(tmp_path, MINIMAL.replace("model:", "modle:"))
    assert error_of(path) == (
        f"{path}:2: field modle: unknown field (expected one of: name, description, hosts, model, cuts, "
        "partitioner, warmup, dataset, link, compression, codec, choose_codec, energy, threads, task, worker, "
        "retry, evaluate, placement, adapt, link_events, exits, upload) "
        "(and 1 more problem)"
    )


def test_wrong_type_names_field_and_line(tmp_path):
    path = write(tmp_path, MINIMAL + "partitioner:\n  name: cyclic\n  repeats: ten\n")
    assert error_of(path) == f"{path}:8: field partitioner.repeats: expected an integer (got 'ten')"


def test_quoted_number_is_not_a_number(tmp_path):
    path = write(tmp_path, MINIMAL + 'warmup: "1"\n')
    assert error_of(path) == f"{path}:6: field warmup: expected an integer (got '1')"


def test_unknown_model_gets_the_registry_suggestion(tmp_path):
    path = write(tmp_path, MINIMAL.replace("name: alexnet", "name: resnet81"))
    assert error_of(path).startswith(f"{path}:3: field model.name: unknown model 'resnet81'; did you mean resnet18,")


RATE_EXPECTED = "expected a rate above 0, like 4MB/s or 32mbit, or 'unlimited' for an unshaped link"


@pytest.mark.parametrize("rate", ["fast", "0MB/s", "0"])
def test_bad_rate(tmp_path, rate):
    path = write(tmp_path, MINIMAL.replace("4MB/s", rate))
    assert error_of(path) == f"{path}:5: field link.rate: {RATE_EXPECTED} (got '{rate}')"


def test_a_zero_rate_is_refused_before_anything_starts():
    """A zero rate once meant an unshaped link, silently, in a run named ...-0MBps-...."""
    result = CliRunner().invoke(cli, ["sweep", str(ALEXNET), "--set", "bandwidth=0MB/s", "--dry-run"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert (
        result.stderr == f"harness: error: manifests/alexnet.yml:56: field link.rate: {RATE_EXPECTED} (got '0MB/s')\n"
    )


def test_an_unlimited_link_is_said_in_words():
    (run,) = load_manifest(ALEXNET, ["bandwidth=unlimited"]).runs
    assert run.id == "alexnet-module-unlimited-none"
    assert run.link.rate_bytes == math.inf


def test_missing_field_points_at_the_mapping_that_lacks_it(tmp_path):
    path = write(tmp_path, MINIMAL.replace("rate: 4MB/s", "delay: 5ms"))
    assert error_of(path) == f"{path}:4: field link.rate: required field is missing"


def test_matrix_item_is_named_by_index(tmp_path):
    path = write(tmp_path, MINIMAL + "compression: [none, lz4, zstd:12]\n")
    assert error_of(path).startswith(f"{path}:6: field compression[2]: expected CODEC[:LEVEL[:SHUFFLE]]")


def test_key_given_twice(tmp_path):
    path = write(tmp_path, MINIMAL + "link: {rate: 1MB/s}\n")
    assert error_of(path) == f"{path}:6: field link: given twice (first at line 4)"


def test_yaml_error_names_its_line(tmp_path):
    path = write(tmp_path, MINIMAL + "cuts: [0, 3\nwarmup: 1\n")
    assert error_of(path) == (
        f"{path}:7: YAML error: expected ',' or ']', but got ':' (while parsing a flow sequence at line 6)"
    )


def test_unused_set_lists_the_variables(tmp_path):
    assert error_of(ALEXNET, ["bandwith=1MB/s"]) == (
        "--set 'bandwith': manifests/alexnet.yml has no variable of that name "
        "(its variables: bandwidth, codec, compression, cuts, device, port, repeats, retry)"
    )


def test_set_without_equals():
    assert error_of(ALEXNET, ["repeats"]) == "--set 'repeats': expected key=value, like repeats=2"


def test_alexnet_with_sets_is_one_run():
    loaded = load_manifest(ALEXNET, ["repeats=2", "cuts=[0,3,13]"])
    assert loaded.rendered.variables == {"repeats": 2, "cuts": [0, 3, 13]}
    [run] = loaded.runs
    assert run.cuts == [0, 3, 13]
    assert run.partitioner.repeats == 2
    assert (run.model.name, run.model.granularity, run.dataset.name) == ("alexnet", "module", "samples")
    assert (run.link.rate, run.link.rate_bytes, run.compression) == ("4MB/s", 4e6, "none")
    assert run.id == "alexnet-module-4MBps-none"


def test_alexnet_defaults():
    [run] = load_manifest(ALEXNET).runs
    assert (run.cuts, run.partitioner.repeats, run.link.rate) == ("all", 10, "4MB/s")


def test_matrix_of_two_models_and_two_compressions(tmp_path):
    models = "model:\n  - name: alexnet\n  - {name: resnet18, granularity: block}\n"
    path = write(tmp_path, MINIMAL.replace("model:\n  name: alexnet\n", models) + "compression: [none, lz4]\n")
    runs = load_manifest(path).runs
    assert [run.index for run in runs] == [0, 1, 2, 3]
    assert [run.id for run in runs] == [
        "alexnet-module-4MBps-none",
        "alexnet-module-4MBps-lz4",
        "resnet18-block-4MBps-none",
        "resnet18-block-4MBps-lz4",
    ]


def test_runs_that_differ_only_in_an_unnamed_field_get_their_index(tmp_path):
    path = write(tmp_path, MINIMAL.replace("  rate: 4MB/s\n", "  - {rate: 4MB/s}\n  - {rate: 4MB/s, delay: 0ns}\n"))
    assert [run.id for run in load_manifest(path).runs] == [
        "alexnet-module-4MBps-none-0",
        "alexnet-module-4MBps-none-1",
    ]


def test_run_survives_json_round_trip():
    run = load_manifest(ALEXNET, ["cuts=[0,3]", "compression=[none,zstd:3]", "codec=int8-channel"]).runs[1]
    assert Run.model_validate(run.model_dump(mode="json")) == run
    assert Run.model_validate_json(json.dumps(run.model_dump(mode="json"))) == run
    assert (run.compression, run.codec) == ("zstd:3", "int8-channel")


def test_cli_render_prints_yaml_and_runs():
    result = CliRunner().invoke(cli, ["manifest", "render", str(ALEXNET), "--set", "compression=[none,lz4]"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert 'compression: ["none", "lz4"]\n' in result.stdout
    assert "alexnet-module-4MBps-none" in result.stdout
    assert "alexnet-module-4MBps-lz4" in result.stdout


def test_cli_render_json():
    result = CliRunner().invoke(cli, ["manifest", "render", str(ALEXNET), "--json", "--set", "repeats=3"])
    record = json.loads(result.stdout)
    assert record["variables"] == {"repeats": 3}
    assert [run["partitioner"]["repeats"] for run in record["runs"]] == [3]


CUT_99 = (
    "harness: error: manifests/alexnet.yml:39: field cuts: model 'alexnet' at module granularity has no cut 99 "
    "(expected 0 to 22)\n"
)


@pytest.mark.parametrize("command", [["manifest", "render"], ["sweep", "--dry-run"]], ids=["render", "dry-run"])
def test_a_cut_the_model_lacks_is_refused_before_anything_starts(command):
    result = CliRunner().invoke(cli, [*command, str(ALEXNET), "--set", "cuts=[0,99]"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == CUT_99


SKIPNET = """\
name: skip
model: {name: experiments.models:tiny_skipnet, single_tensor: true}
cuts: [0, 3, 5]
link: {rate: 4MB/s}
evaluate: [{name: fixed, cut: 4}]
"""


def test_a_cut_where_more_than_one_tensor_crosses_is_refused_when_single_tensors_are_asked_for(tmp_path):
    path = write(tmp_path, SKIPNET)
    result = CliRunner().invoke(cli, ["manifest", "render", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"harness: error: {path}:3: field cuts: cut 5 of model 'experiments.models:tiny_skipnet' at module "
        "granularity sends 2 values, and model.single_tensor asks for cuts where one tensor crosses "
        "(expected 0 to 3, 7 to 11)\n"
    )
    fixed = CliRunner().invoke(cli, ["manifest", "render", str(write(tmp_path, SKIPNET.replace("5]", "7]")))])
    assert fixed.exit_code == 2
    assert fixed.stderr.startswith(f"harness: error: {path}:5: field evaluate[0].cut: cut 4 of model")
    allowed = write(tmp_path, SKIPNET.replace("single_tensor: true", "single_tensor: false"))
    assert CliRunner().invoke(cli, ["manifest", "render", str(allowed)]).exit_code == 0


def test_a_cut_withheld_by_the_model_says_why(tmp_path):
    path = write(
        tmp_path, "name: d\nmodel: {name: tests.fixtures.models:carries_dtype}\ncuts: [2, 3]\nlink: {rate: 4MB/s}\n"
    )
    assert CliRunner().invoke(cli, ["manifest", "render", str(path)]).stderr == (
        f"harness: error: {path}:3: field cuts: model 'tests.fixtures.models:carries_dtype' at module granularity "
        "withholds cut 3: a value that cannot be sent is live there (getattr_1: dtype) (expected 0 to 2, 4)\n"
    )


def test_each_model_is_traced_once_however_many_runs_name_it(monkeypatch):
    from harness.manifest import cuts

    traced = []
    build = cuts.build_split_graph
    monkeypatch.setattr(cuts, "build_split_graph", lambda *args: traced.append(args[1:]) or build(*args))
    cuts.cut_table.cache_clear()
    loaded = load_manifest(ALEXNET, ["cuts=[0,3]", "compression=[none,lz4,zstd]", "repeats=1"])
    for _ in range(2):
        cuts.check_cuts(loaded)
    assert len(loaded.runs) == 3 and len(traced) == 1


HOSTILE_LEVELS = 9


def test_a_manifest_of_nested_aliases_is_refused_at_once(tmp_path):
    """Nine lists each naming the previous one nine times: a few hundred bytes that once took a minute of
    CPU to refuse. The bound is this test's timeout, not a timed assertion."""
    lines = ["name: hostile", "a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, HOSTILE_LEVELS + 1)]
    path = write(tmp_path, "\n".join([*lines, "model: alexnet", "link: {rate: 4MB/s}", ""]))
    assert len(path.read_bytes()) < 1000
    for command in (["manifest", "render", str(path)], ["sweep", str(path), "--dry-run"]):
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli", *command], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 2
        assert done.stderr == (
            f"harness: error: {path}:7: YAML error: alias *a4 brings the values that aliases stand for to 141,148, "
            "more than the 100,000 a manifest may have (aliases nested in aliases multiply)\n"
        )


def test_aliases_within_the_bound_work_as_yaml_says(tmp_path):
    path = write(tmp_path, "name: shared\nmodel: alexnet\nx-link: &link {rate: 4MB/s}\nlink: [*link, *link]\n")
    error = error_of(path)
    assert error.startswith(f"{path}:3: field x-link: unknown field"), "the aliases themselves were read"
    path = write(tmp_path, "name: shared\nmodel: &m {name: alexnet}\nlink: {rate: 4MB/s}\nmodel_again: *m\n")
    assert error_of(path).startswith(f"{path}:4: field model_again: unknown field")


def test_an_alias_inside_its_own_value_is_refused(tmp_path):
    path = write(tmp_path, "name: loop\nmodel: &m [alexnet, *m]\nlink: {rate: 4MB/s}\n")
    assert error_of(path) == f"{path}:2: YAML error: alias *m refers to a value that holds it"


def test_cli_render_error_is_one_line_and_exit_2():
    result = CliRunner().invoke(cli, ["manifest", "render", str(ALEXNET), "--set", "repeats=0"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "harness: error: manifests/alexnet.yml:44: field partitioner.repeats: expected a number >= 1 (got 0)\n"
    )


def test_unknown_evaluated_partitioner_names_its_line(tmp_path):
    path = write(tmp_path, MINIMAL + "evaluate: [dads, magic]\n")
    assert error_of(path) == (
        f"{path}:6: field evaluate[1].name: expected one of dads, fixed, neurosurgeon, oracle or "
        "package.module:function (got 'magic')"
    )


TIERS = """\
name: tiers
hosts: {tiers: [rpi, jetson, gpu]}
model: {name: alexnet}
cuts: [[3, 13], [5, 20]]
link: {rate: 4MB/s}
"""


def test_tiers_name_a_pipeline_and_cuts_one_cut_per_later_tier(tmp_path):
    loaded = load_manifest(write(tmp_path, TIERS))
    hosts = loaded.manifest.hosts
    assert (hosts.pipeline, hosts.edge, hosts.cloud) == (("rpi", "jetson", "gpu"), "rpi", "gpu")
    assert loaded.runs[0].cuts == [[3, 13], [5, 20]]
    two = load_manifest(write(tmp_path, MINIMAL + "hosts: {tiers: [pi, gpu]}\ncuts: [[3], [5]]\n"))
    assert two.manifest.hosts.pipeline == ("pi", "gpu") and two.runs[0].cuts == [3, 5]
    placed = load_manifest(write(tmp_path, TIERS.replace("cuts: [[3, 13], [5, 20]]", "placement: dp")))
    assert placed.manifest.placement.name == "dp" and placed.manifest.placement.objective == "latency"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("cuts: [[3, 13], [5, 20]]", "cuts: [[3, 13], [13, 3]]"),
            ":4: field cuts: expected each pipeline's cuts in increasing order, each once (got [13, 3])",
        ),
        (
            ("cuts: [[3, 13], [5, 20]]", "cuts: [[3, 13], [5]]"),
            ":4: field cuts[1]: expected 2 cuts per pipeline, one per tier after rpi (jetson, gpu) (got [5])",
        ),
        (
            ("cuts: [[3, 13], [5, 20]]", "cuts: [3, 13]"),
            ":4: field cuts: expected pipelines for 3 tiers, one per tier after rpi (jetson, gpu), like [[3, 6]], "
            "or a placement (got [3, 13])",
        ),
        (
            ("cuts: [[3, 13], [5, 20]]", "placement: simplex"),
            ":4: field placement.name: expected one of cloud-only, device-only, dp, even-split, exhaustive, "
            "genetic, ilp or package.module:function (got 'simplex')",
        ),
        (
            ("link:", "placement: {name: dp, objective: energy}\nlink:"),
            ":5: field placement.objective: expected 'latency' or 'throughput' (got 'energy')",
        ),
        (
            ("link:", "placement: dp\nlink:"),
            ":4: field cuts: expected 'all' beside placement, which chooses the cuts (got [[3, 13], [5, 20]])",
        ),
        (
            ("{tiers: [rpi, jetson, gpu]}", "{tiers: [rpi, jetson, gpu], cloud: jetson}"),
            ":2: field hosts: expected either tiers or edge and cloud, not both",
        ),
        (
            ("{tiers: [rpi, jetson, gpu]}", "{tiers: [rpi, gpu, rpi]}"),
            ":2: field hosts: expected each tier group once (got rpi more than once)",
        ),
        (("cuts: [[3, 13], [5, 20]]", "cuts: [[3, 13], [5, 99]]"), ":4: field cuts[1]: model 'alexnet'"),
    ],
    ids=["order", "count", "flat", "strategy", "objective", "both", "forms", "twice", "range"],
)
def test_bad_pipelines_are_refused_at_their_line(tmp_path, change, expected):
    path = write(tmp_path, TIERS.replace(*change))
    result = CliRunner().invoke(cli, ["manifest", "render", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"harness: error: {path}{expected}"), result.stderr
    assert "\n" not in result.stderr.rstrip("\n")


def test_a_dry_run_over_three_tiers_lists_each_pipeline_on_its_hosts(tmp_path):
    path = write(tmp_path, TIERS)
    result = CliRunner().invoke(cli, ["sweep", "--dry-run", str(path), "-i", "inventory/local-tiers"])
    assert result.exit_code == 0, result.stderr
    pipelines = re.findall(r"(rpi-local>\S+)\s+│\s+(given \[[0-9, ]+\])", result.stdout)
    assert pipelines == [
        ("rpi-local>3>jetson-local>13>gpu-local", "given [3, 13]"),
        ("rpi-local>5>jetson-local>20>gpu-local", "given [5, 20]"),
    ]
    assert result.stdout.endswith("dry run: 1 runs on inventory/local-tiers; nothing was started\n")


def test_plan_decides_one_cut_and_refuses_three_tiers_at_their_line(tmp_path):
    path = write(tmp_path, TIERS)
    result = CliRunner().invoke(cli, ["plan", str(path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(
        f"harness: error: {path}:2: field hosts.tiers: `harness plan` decides one cut between one edge group"
    )


def test_the_tiers_example_names_the_sample_labs_groups_and_a_placement():
    loaded = load_manifest(Path("manifests/tiers.yml"), ["objective=throughput"])
    assert loaded.manifest.hosts.pipeline == ("rpi", "jetson", "gpu")
    assert (loaded.manifest.placement.name, loaded.manifest.placement.objective) == ("dp", "throughput")
