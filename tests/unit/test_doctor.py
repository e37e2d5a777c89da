"""``harness doctor``'s judgement, from facts and events written by hand: no host is reached here."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from harness.ansible import doctor
from harness.ansible.doctor import (
    DoctorReport,
    HostFacts,
    Missing,
    ReportCollector,
    find_missing,
    host_facts,
    missing_for_device,
    missing_for_links,
    missing_runtime,
)
from harness.ansible.present import doctor_record, doctor_table, missing_lines, summary
from harness.cli import cli
from harness.manifest import LinkSpec, Manifest

REPO = Path(__file__).resolve().parents[2]
GROUPS = {"all": ["pi", "gpu"], "edge": ["pi"], "cloud": ["gpu"]}
ALL_QDISCS = dict.fromkeys(doctor.QDISCS, "builtin")
NO_NETEM = {**ALL_QDISCS, "netem": "absent"}


def facts(host: str = "pi", **fields) -> HostFacts:
    """A healthy host with the harness installed, changed by ``fields``."""
    base = {
        "groups": ("edge",),
        "arch": "aarch64",
        "cores": 4,
        "memory_bytes": 4 * 2**30,
        "python": "3.11.2",
        "harness_python": "/home/lab/split-harness/venv/bin/python",
        "harness": "0.1.0",
        "torch": "2.13.0",
        "accelerators": (),
        "qdiscs": ALL_QDISCS,
        "tc": "/usr/sbin/tc",
        "root": "sudo",
        "link_shaping": "tc",
    }
    return HostFacts(host=host, **{**base, **fields})


def manifest(link: dict | list[dict], device: str = "cpu") -> Manifest:
    return Manifest.model_validate(
        {"name": "check", "model": {"name": "alexnet"}, "link": link, "worker": {"port": 5601, "device": device}}
    )


def link(**fields) -> LinkSpec:
    return LinkSpec.model_validate({"rate": "4MB/s", **fields})


# Reports as playbooks/doctor.yml prints them (the probes' registered results, trimmed).
SYSTEM = {
    "qdiscs": {"tbf": "builtin", "htb": "module", "netem": "not installed", "ingress": "loaded", "ifb": "absent"},
    "tc": "/usr/sbin/tc",
    "euid": 1000,
    "sudo": True,
    "gpus": None,
    "board": "Raspberry Pi 4 Model B Rev 1.4",
    "harness_python_found": True,
}
INFO = {"harness": "0.1.0", "torch": "2.13.0", "python": "3.11.2", "accelerators": [], "torch_threads": 4}


def report(**fields) -> dict:
    base = {
        "arch": "aarch64",
        "cores": 4,
        "memory_mb": 3796,
        "kernel": "6.6.51+rpt-rpi-v8",
        "python": "3.11.2",
        "harness_python": "/home/lab/split-harness/venv/bin/python",
        "builds_venv": True,
        "link_shaping": "tc",
        "become": False,
        "harness": {"rc": 0, "stdout": json.dumps(INFO), "stderr": ""},
        "torch": {"skipped": True},
        "system": {"rc": 0, "stdout": json.dumps(SYSTEM)},
    }
    return {**base, **fields}


def test_facts_from_a_report():
    found = host_facts("pi", ("edge", "rpi"), report())
    assert found == HostFacts(
        host="pi",
        groups=("edge", "rpi"),
        arch="aarch64",
        board="Raspberry Pi 4 Model B Rev 1.4",
        cores=4,
        memory_bytes=3796 * 2**20,
        kernel="6.6.51+rpt-rpi-v8",
        python="3.11.2",
        harness_python="/home/lab/split-harness/venv/bin/python",
        harness="0.1.0",
        torch="2.13.0",
        accelerators=(),
        qdiscs=SYSTEM["qdiscs"],
        tc="/usr/sbin/tc",
        root="sudo",
        builds_venv=True,
        link_shaping="tc",
    )
    assert [name for name in doctor.QDISCS if found.has_qdisc(name)] == ["tbf", "htb", "ingress"]


def test_the_power_sources_the_harness_found_are_shown_and_unknown_from_an_older_harness():
    newer = {"rc": 0, "stdout": json.dumps({**INFO, "energy": ["rapl", "nvml"]}), "stderr": ""}
    assert host_facts("gpu", ("cloud",), report(harness=newer)).energy == ("rapl", "nvml")
    none_found = {"rc": 0, "stdout": json.dumps({**INFO, "energy": []}), "stderr": ""}
    assert host_facts("pi", ("edge",), report(harness=none_found)).energy == ()
    assert host_facts("pi", ("edge",), report()).energy is None, "a harness that does not look"


def test_facts_without_the_harness_take_torch_from_its_own_probe():
    found = host_facts(
        "jetson",
        ("edge",),
        report(
            python="3.10.12",
            harness={"rc": 1, "stdout": "", "stderr": "Traceback ...\nModuleNotFoundError: No module named 'harness'"},
            torch={"rc": 0, "stdout": "2.5.0a0+872d972e41.nv24.08\n"},
        ),
    )
    assert (found.harness, found.harness_error) == (None, "ModuleNotFoundError: No module named 'harness'")
    assert (found.torch, found.accelerators, found.python) == ("2.5.0a0+872d972e41.nv24.08", None, "3.10.12")


def test_an_interpreter_that_does_not_exist_is_named_so():
    """Ansible says only "Error executing command." when the command cannot start."""
    system = {**SYSTEM, "harness_python_found": False}
    found = host_facts(
        "pi",
        ("edge",),
        report(
            harness={"rc": 2, "msg": "Error executing command.", "stderr": ""},
            torch={"rc": 2, "msg": "Error executing command."},
            system={"rc": 0, "stdout": json.dumps(system)},
        ),
    )
    assert (found.harness, found.harness_error, found.torch) == (None, "no such interpreter", None)


def test_odd_answers_give_unknown_not_an_error():
    found = host_facts("pi", ("edge",), report(cores="?", system={"rc": 1, "stdout": "", "stderr": "boom"}))
    assert found.cores == 0
    assert found.qdiscs == dict.fromkeys(doctor.QDISCS, "unknown")
    assert (found.tc, found.root, found.gpus, found.board) == (None, "no", None, None)


@pytest.mark.parametrize(
    ("system", "become", "root"),
    [({"euid": 0}, False, "yes"), ({"euid": 1000}, True, "become"), ({"euid": 1000, "sudo": False}, False, "no")],
)
def test_root_by_login_become_or_sudo(system, become, root):
    found = host_facts("pi", (), report(become=become, system={"rc": 0, "stdout": json.dumps(system)}))
    assert found.root == root


def event(kind: str, host: str, res: dict, **data) -> dict:
    return {"event": kind, "event_data": {"host": host, "task": data.pop("task", "t"), "res": res, **data}}


def test_collector_keeps_reports_and_says_why_a_host_has_none():
    collector = ReportCollector()
    groups = {"all": ["pi", "gone", "broken", "late"], "edge": ["pi", "gone"], "cloud": ["broken"]}
    for item in [
        event("runner_on_ok", "pi", {"changed": False}),
        event("runner_on_ok", "pi", {"doctor_report": report()}),
        event("runner_on_unreachable", "gone", {"msg": "Task failed: Failed to connect: No route to host"}),
        event("runner_on_failed", "broken", {"msg": "ignored"}, ignore_errors=True),
        event("runner_on_failed", "broken", {"msg": "/usr/bin/python3: not found"}, task="Gathering Facts"),
        {"event": "playbook_on_stats", "event_data": {}},
    ]:
        collector(item)
    found = collector.facts(groups, "the play ended early")
    assert [(host.host, host.groups, host.reachable, host.problem) for host in found] == [
        ("pi", ("edge",), True, ""),
        ("gone", ("edge",), False, "Failed to connect: No route to host"),
        ("broken", ("cloud",), True, "task 'Gathering Facts' failed: /usr/bin/python3: not found"),
        ("late", (), True, "the play ended early"),
    ]
    assert found[0].arch == "aarch64"
    assert find_missing(found, groups, None) == [
        Missing("gone", "unreachable: Failed to connect: No route to host"),
        Missing("broken", "could not be examined: task 'Gathering Facts' failed: /usr/bin/python3: not found"),
        Missing("late", "could not be examined: the play ended early"),
    ]


def test_emulated_shaping_needs_nothing_for_rate_or_delay():
    host = facts(link_shaping="emulated", tc=None, root="no", qdiscs=dict.fromkeys(doctor.QDISCS, "unknown"))
    assert missing_for_links(host, [link(delay="20ms"), link(shaping="emulated")]) == []


def test_tc_shaping_with_a_delay_needs_netem():
    assert missing_for_links(facts(), [link(delay="20ms")]) == []
    assert missing_for_links(facts(qdiscs=NO_NETEM), [link(), link(rate="1MB/s", delay="20ms", shaping="tc")]) == [
        "link 1MB/s with 20ms delay needs netem for its delay under tc shaping; the kernel has no netem (sch_netem)"
    ]


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (
            "not installed",
            "the kernel builds sch_netem as a module, but it is not installed (Ubuntu: linux-modules-extra)",
        ),
        ("unknown", "cannot tell whether the kernel has netem (no kernel config or module list readable)"),
    ],
)
def test_netem_not_installed_or_unknown(state, reason):
    host = facts(qdiscs={**ALL_QDISCS, "netem": state})
    assert missing_for_links(host, [link(delay="5ms")]) == [
        f"link 4MB/s with 5ms delay needs netem for its delay under tc shaping; {reason}"
    ]


def test_tc_shaping_needs_tc_root_and_a_rate_qdisc_once_per_host():
    host = facts(tc=None, root="no", qdiscs={**ALL_QDISCS, "tbf": "absent", "htb": "unknown"})
    assert missing_for_links(host, [link(), link(rate="1MB/s")]) == [
        "tc shaping needs the tc command (iproute2), which is not on the host",
        "tc shaping needs root: log in as root, allow passwordless sudo, or give ansible_become_password",
        "tc shaping needs the tbf or htb qdisc; the kernel's tbf is absent, htb is unknown",
    ]


def test_tc_asked_where_the_host_emulates():
    assert missing_for_links(facts(link_shaping="emulated"), [link(shaping="tc")]) == [
        "link 4MB/s asks for tc shaping, but the host shapes its link by emulated (harness_link_shaping)"
    ]


def test_cuda_needs_devices_torch_or_the_driver_sees():
    assert missing_for_device(facts(accelerators=()), "cpu") == []
    assert missing_for_device(facts(accelerators=("NVIDIA H100",)), "cuda") == []
    assert missing_for_device(facts(torch="2.13.0+cpu", accelerators=()), "cuda") == [
        "worker.device cuda: torch 2.13.0+cpu there sees no CUDA device"
    ]
    assert missing_for_device(facts(accelerators=("NVIDIA H100",)), "cuda:1") == [
        "worker.device cuda:1: torch 2.13.0 there sees only 1 CUDA device"
    ]
    assert missing_for_device(facts(harness=None, accelerators=None, gpus=("GPU 0: NVIDIA A100",)), "cuda") == []
    assert missing_for_device(facts(harness=None, accelerators=None, gpus=()), "cuda:0") == [
        "worker.device cuda:0: nvidia-smi lists no CUDA device"
    ]
    assert missing_for_device(facts(harness=None, accelerators=None), "cuda") == [
        "worker.device cuda: cannot tell whether the host has a CUDA device "
        "(the harness is not importable there and nvidia-smi is missing)"
    ]


def test_runtime_the_harness_imports_or_provisioning_builds_it():
    assert missing_runtime(facts()) == []
    assert missing_runtime(facts(harness=None, harness_error="no such interpreter")) == [
        "the harness is not importable by /home/lab/split-harness/venv/bin/python: no such interpreter"
    ]
    assert missing_runtime(facts(harness=None, builds_venv=True)) == []
    assert missing_runtime(facts(harness=None, builds_venv=True, python="3.10.12")) == [
        "provisioning builds the venv with Python 3.10.12; the harness needs Python 3.11 or later"
    ]


def test_manifest_checks_its_edge_and_cloud_hosts_only():
    hosts = [
        facts("pi", qdiscs=NO_NETEM),
        facts("gpu", groups=("cloud",), torch="2.13.0+cpu", qdiscs=NO_NETEM),
        facts("spare", groups=(), harness=None, harness_error="not there"),
    ]
    groups = {**GROUPS, "all": ["pi", "gpu", "spare"]}
    assert find_missing(hosts, groups, manifest({"rate": "4MB/s", "delay": "20ms"}, "cuda")) == [
        Missing(
            "pi",
            "link 4MB/s with 20ms delay needs netem for its delay under tc shaping; "
            "the kernel has no netem (sch_netem)",
        ),
        Missing("gpu", "worker.device cuda: torch 2.13.0+cpu there sees no CUDA device"),
    ]
    assert find_missing(hosts, groups, manifest([{"rate": "4MB/s"}, {"rate": "1MB/s", "shaping": "emulated"}])) == []


def test_with_tiers_every_later_tier_is_checked_as_a_worker_host():
    hosts = [
        facts("pi"),
        facts("jetson", groups=("jetson",), torch="2.13.0+cpu"),
        facts("gpu", groups=("gpu",)),
    ]
    groups = {"all": ["pi", "jetson", "gpu"], "rpi": ["pi"], "jetson": ["jetson"], "gpu": ["gpu"]}
    tiers = Manifest.model_validate(
        {
            "name": "check",
            "hosts": {"tiers": ["rpi", "jetson", "gpu"]},
            "model": {"name": "alexnet"},
            "cuts": [[3, 13]],
            "link": {"rate": "4MB/s", "shaping": "emulated"},
            "worker": {"device": "cuda"},
        }
    )
    assert find_missing(hosts, groups, tiers) == [
        Missing("jetson", "worker.device cuda: torch 2.13.0+cpu there sees no CUDA device"),
        Missing("gpu", "worker.device cuda: torch 2.13.0 there sees no CUDA device"),
    ]


def doctor_report(missing: list[Missing]) -> DoctorReport:
    hosts = [
        facts("pi", board="Raspberry Pi 5", qdiscs=NO_NETEM),
        HostFacts("gone", ("cloud",), reachable=False, problem="Failed to connect: Connection refused"),
    ]
    return DoctorReport(Path("inventory/lab"), Path("manifests/m.yml"), hosts, missing)


def test_summary_and_lines():
    missing = [Missing("gone", "unreachable: Failed to connect: Connection refused"), Missing("gone", "x")]
    assert missing_lines(doctor_report(missing)) == [
        "missing on gone: unreachable: Failed to connect: Connection refused",
        "missing on gone: x",
    ]
    assert summary(doctor_report(missing)) == "2 things missing on 1 host of inventory/lab for manifests/m.yml"
    assert summary(doctor_report([])) == "nothing missing on inventory/lab for manifests/m.yml"


def test_table_and_record():
    console = Console(width=300)
    with console.capture() as captured:
        console.print(doctor_table(doctor_report([])))
    text = captured.get()
    assert "aarch64 (Raspberry Pi 5)" in text
    assert "tbf, htb, no netem, ingress, ifb" in text
    assert "no: Connection refused" in text
    record = json.loads(json.dumps(doctor_record(doctor_report([]))))
    assert record["hosts"][0]["qdiscs"]["netem"] == "absent"
    assert record["hosts"][1]["reachable"] is False


def test_set_without_a_manifest_is_bad_input():
    result = CliRunner().invoke(cli, ["doctor", "--set", "repeats=2"])
    assert result.exit_code == 2
    assert result.stderr == "harness: error: --set needs --manifest: it sets the manifest's variables\n"


def test_manifest_groups_are_checked_before_anything_runs(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the playbook ran")

    monkeypatch.setattr(doctor, "run_playbook", never)
    manifest_path = REPO / "tests/fixtures/manifests/doctor-groups.yml"
    result = CliRunner().invoke(cli, ["doctor", "-i", str(REPO / "inventory/local"), "--manifest", str(manifest_path)])
    assert result.exit_code == 2, result.output
    assert "inventory/local has no hosts in group 'rpi' (hosts.edge); it has: cloud, edge" in result.stderr
