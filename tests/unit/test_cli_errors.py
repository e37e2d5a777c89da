"""Bad input: one clear line on stderr, exit 2, nothing else printed."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from harness.cli import cli

CASES = [
    (["model", "inspect", "resnet81"], "unknown model 'resnet81'; did you mean resnet18,"),
    (
        ["model", "inspect", "resnet18", "--input", "1,1,224,224"],
        "input shape 1,1,224,224 does not fit model 'resnet18': Given groups=1, weight of size [64, 3, 7, 7]",
    ),
    (["model", "verify", "alexnet", "--input", "1,3,x"], "--input '1,3,x': expected comma-separated positive integers"),
    (["model", "inspect", "nosuch.module:build"], "model 'nosuch.module:build': cannot import module 'nosuch.module'"),
    (["model", "inspect", "experiments.models:nothere"], "module 'experiments.models' has no function 'nothere'"),
    (["model", "inspect", "tests.fixtures.models:not_a_module"], "not_a_module() returned str, expected nn.Module"),
    (["model", "inspect", "experiments.models:"], "model 'experiments.models:': expected 'package.module:function'"),
    (
        ["model", "inspect", "tests.fixtures.models:data_dependent"],
        "cannot trace model 'tests.fixtures.models:data_dependent': torch.fx failed at tests/fixtures/models.py:15 "
        "(`if y.sum() > 0:`): symbolically traced variables cannot be used as inputs to control flow; "
        "torch.export failed at tests/fixtures/models.py:15",
    ),
    (["model", "inspect", "fasterrcnn_resnet50_fpn"], "cut its backbone instead: 'fasterrcnn_resnet50_fpn.backbone'"),
    (["model", "inspect", "alexnet", "-g", "layer"], "granularity 'layer': expected one of node, module, block"),
    (["model", "inspect", "alexnet", "--weights", "FOO"], "model 'alexnet' has no weight set 'FOO'; expected one of"),
    (["model", "inspect", "alexnet", "--weights", "missing/w.pt"], "weights file missing/w.pt for model 'alexnet'"),
    (["model", "profile", "alexnet", "--threads", "0"], "--threads 0: expected a positive number of threads"),
    (["bench", "wire", "--repeats", "0"], "--repeats 0 --warmup 20: expected repeats >= 1 and warmup >= 0"),
    (["bench", "wire", "--warmup", "-1"], "--repeats 200 --warmup -1: expected repeats >= 1 and warmup >= 0"),
    (
        ["bench", "wire", "--sizes", "4k,lots"],
        "--sizes '4k,lots': expected comma-separated tensor sizes like 4k,16k,1m",
    ),
    (
        ["bench", "wire", "--sizes", "6"],
        "--sizes '6': expected comma-separated tensor sizes like 4k,16k,1m, each a multiple of 4",
    ),
    (["bench", "wire", "--sizes", "1g"], "--sizes '1g': expected"),
    (["bench", "wire", "--sizes", "128m"], "from 4 to 64m"),
    (["plan", "manifests/alexnet.yml", "--upload"], "manifests/alexnet.yml: no upload section; expected upload:"),
    (["plan", "manifests/ionn.yml", "--simulate"], "--simulate and --published: expected with --upload"),
    (
        ["plan", "manifests/ionn.yml", "--upload", "--published", "missing.csv"],
        "missing.csv: cannot read a per-layer profile",
    ),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(args[1:3]) for args, _ in CASES])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("harness: error: ")
    assert message in lines[0]


def test_failed_verification_exits_1(monkeypatch):
    from harness.model import verify as verify_module

    def always_off(split, model, tolerance, seed=0, on_cut=None):
        report = verify_module.VerifyReport(split.name, str(split.granularity))
        report.checks.append(verify_module.CutCheck(2, 0.5, 1e-5))
        return report

    monkeypatch.setattr(verify_module, "verify", always_off)
    result = CliRunner().invoke(cli, ["model", "verify", "experiments.models:tiny_skipnet"])
    assert result.exit_code == 1
    assert "cut 2 (after stem.1): max |difference| 0.5 > bound 1e-05" in result.stdout
    assert "1 of 1 cuts of experiments.models:tiny_skipnet failed verification" in result.stdout


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_deploy_off_loopback_without_keys_is_refused_before_ansible_runs(tmp_path):
    inventory = tmp_path / "hosts.yml"
    hosts = {
        "edge": {"hosts": {"pi": {"ansible_host": "10.9.0.2"}}},
        "cloud": {"hosts": {"gpu": {"ansible_host": "10.9.0.3"}}},
    }
    inventory.write_text(yaml.safe_dump({"all": {"children": hosts}}))
    line = _one_error_line(CliRunner().invoke(cli, ["deploy", "-i", str(inventory)]))
    assert line == (
        f"harness: error: deploy on {inventory}: the worker would listen on 10.9.0.3, off loopback, where it refuses "
        "to start without keys; make them with `harness keys gen DIR` and pass --keys DIR to provision and deploy"
    )


def test_keys_for_a_phase_must_be_a_key_directory(tmp_path):
    keys = tmp_path / "keys"
    (keys / "clients").mkdir(parents=True)
    (keys / "worker.key").write_text("public")
    line = _one_error_line(CliRunner().invoke(cli, ["provision", "--keys", str(keys)]))
    assert line == (
        f"harness: error: --keys {keys}: worker.key_secret, clients/edge.key, edge.key, edge.key_secret missing; "
        "expected a directory made by `harness keys gen`"
    )


def test_a_run_the_plan_lacks_is_refused_before_anything_starts(tmp_path):
    """The sweep playbook names each link's runs; a typo there must not run nothing and call it done."""
    from harness.manifest import load_manifest

    (run,) = load_manifest(Path("manifests/alexnet.yml"), ["cuts=[0]", "repeats=1"]).runs
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"name": "alexnet", "runs": [run.model_dump(mode="json")]}))
    arguments = ["worker", "run-plan", str(plan), "--connect", "tcp://127.0.0.1:9", "--observer", "tcp://127.0.0.1:9"]
    line = _one_error_line(CliRunner().invoke(cli, [*arguments, "--run", run.id, "--run", "x"]))
    assert line == f"harness: error: plan {plan}: --run x: no such run; expected one of alexnet-module-4MBps-none"
