"""``harness doctor``: what each host of a lab has, and what a manifest would miss there.

A lab fails in the middle of a sweep for reasons a minute of looking would have shown: a host that
cannot be reached, no netem for a delay, no root for ``tc``, no GPU for ``device: cuda``. The
doctor looks first and changes nothing.

Facts come from ``playbooks/doctor.yml``, whose last task prints one ``doctor_report`` per host
(``debug`` with ``var:``). Its ``runner_on_ok`` event carries that mapping as structured data, so
the facts are read from the event stream by the key ``doctor_report``, whatever the task is
called; unlike ``set_stats``, nothing is aggregated across hosts or lost when a host fails. The
report holds the probes' raw results (return code, output), parsed here: a host that answers
oddly gives "unknown", never a failed play. The judgement of what is missing is made by pure
functions over those facts, so it is tested with facts written by hand.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.ansible.inventory import check_groups, inventory_groups
from harness.ansible.runner import run_playbook
from harness.manifest import LinkSpec, LoadedManifest, Manifest

QDISCS = ("tbf", "htb", "netem", "ingress", "ifb")
USABLE = ("loaded", "builtin", "module")
HARNESS_PYTHON = (3, 11)
_REPORT = "doctor_report"


@dataclass(frozen=True)
class HostFacts:
    """One host as the doctor saw it; ``None`` means the doctor cannot tell."""

    host: str
    groups: tuple[str, ...]
    reachable: bool = True
    problem: str = ""
    arch: str = "unknown"
    board: str | None = None
    cores: int = 0
    memory_bytes: int = 0
    kernel: str = "unknown"
    python: str = "unknown"
    harness_python: str = ""
    harness: str | None = None
    harness_error: str = ""
    torch: str | None = None
    accelerators: tuple[str, ...] | None = None
    gpus: tuple[str, ...] | None = None
    qdiscs: dict[str, str] = field(default_factory=lambda: dict.fromkeys(QDISCS, "unknown"))
    tc: str | None = None
    root: str = "no"
    builds_venv: bool = False
    link_shaping: str = "emulated"
    energy: tuple[str, ...] | None = None
    """The power sources ``harness host-info`` found (None: the harness is not there to look)."""

    @property
    def examined(self) -> bool:
        return self.reachable and not self.problem

    def has_qdisc(self, name: str) -> bool:
        return self.qdiscs.get(name, "unknown") in USABLE


@dataclass(frozen=True)
class Missing:
    host: str
    message: str

    def __str__(self) -> str:
        return f"{self.host}: {self.message}"


@dataclass(frozen=True)
class DoctorReport:
    inventory: Path
    manifest: Path | None
    hosts: list[HostFacts]
    missing: list[Missing]


def examine(inventory: Path, loaded: LoadedManifest | None = None) -> DoctorReport:
    """Reach every host of ``inventory``; with a manifest, also say what it would miss.

    The manifest's groups are checked against the inventory before anything runs (``BadInput``),
    as ``harness sweep`` does.
    """
    groups = inventory_groups(inventory)
    manifest = loaded.manifest if loaded is not None else None
    if manifest is not None:
        check_groups(inventory, groups, manifest.hosts.fields)
    collector = ReportCollector()
    result = run_playbook("doctor", inventory, {}, collector)
    facts = collector.facts(groups, f"the doctor playbook ended ({result.status}, rc {result.rc}) before reporting it")
    path = loaded.rendered.path if loaded is not None else None
    return DoctorReport(inventory, path, facts, find_missing(facts, groups, manifest))


class ReportCollector:
    """An ansible-runner event handler keeping each host's report, or why there is none."""

    def __init__(self) -> None:
        self.reports: dict[str, dict] = {}
        self.unreachable: dict[str, str] = {}
        self.failed: dict[str, str] = {}

    def __call__(self, event: dict) -> None:
        data = event.get("event_data") or {}
        host = data.get("host")
        result = data.get("res") or {}
        if not host or not isinstance(result, dict):
            return
        kind = event.get("event")
        if kind == "runner_on_ok" and isinstance(result.get(_REPORT), dict):
            self.reports[host] = result[_REPORT]
        elif kind == "runner_on_unreachable":
            self.unreachable.setdefault(host, _last_line(result.get("msg")) or "unreachable")
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            reason = _last_line(result.get("msg") or result.get("stderr")) or "failed"
            self.failed.setdefault(host, f"task '{data.get('task', '?')}' failed: {reason}")

    def facts(self, groups: dict[str, list[str]], ended: str) -> list[HostFacts]:
        """Every host of the inventory, in its order, with what was learnt about it."""
        found = []
        for host in groups.get("all", []):
            member_of = host_groups(groups, host)
            if host in self.reports:
                found.append(host_facts(host, member_of, self.reports[host]))
            elif host in self.unreachable:
                found.append(HostFacts(host, member_of, reachable=False, problem=self.unreachable[host]))
            else:
                found.append(HostFacts(host, member_of, problem=self.failed.get(host, ended)))
        return found


def host_groups(groups: dict[str, list[str]], host: str) -> tuple[str, ...]:
    return tuple(sorted(name for name, hosts in groups.items() if host in hosts and name not in ("all", "ungrouped")))


def host_facts(host: str, groups: tuple[str, ...], report: dict) -> HostFacts:
    """Facts from one host's ``doctor_report`` (see playbooks/doctor.yml)."""
    harness_result = _mapping(report.get("harness"))
    info = _json_object(harness_result.get("stdout")) if harness_result.get("rc") == 0 else None
    system = _json_object(_mapping(report.get("system")).get("stdout")) or {}
    qdiscs = _mapping(system.get("qdiscs"))
    torch_result = _mapping(report.get("torch"))
    if info is not None:
        harness, harness_error = str(info.get("harness", "unknown")), ""
        torch = info.get("torch")
        accelerators = tuple(str(name) for name in info.get("accelerators") or ())
        energy = tuple(str(name) for name in info["energy"]) if isinstance(info.get("energy"), list) else None
        python = str(info.get("python") or report.get("python") or "unknown")
    else:
        harness, torch, accelerators, energy = None, None, None, None
        harness_error = _harness_error(harness_result, system.get("harness_python_found"))
        if torch_result.get("rc") == 0:
            torch = _last_line(torch_result.get("stdout")) or None
        python = str(report.get("python") or "unknown")
    gpus = system.get("gpus")
    return HostFacts(
        host=host,
        groups=groups,
        arch=str(report.get("arch") or "unknown"),
        board=system.get("board") or None,
        cores=_int(report.get("cores")),
        memory_bytes=_int(report.get("memory_mb")) * 1024 * 1024,
        kernel=str(report.get("kernel") or "unknown"),
        python=python,
        harness_python=str(report.get("harness_python") or ""),
        harness=harness,
        harness_error=harness_error,
        torch=str(torch) if torch else None,
        accelerators=accelerators,
        gpus=tuple(str(line) for line in gpus) if isinstance(gpus, list) else None,
        qdiscs={name: str(qdiscs.get(name) or "unknown") for name in QDISCS},
        tc=system.get("tc") or None,
        root=_root(system, _bool(report.get("become"))),
        builds_venv=_bool(report.get("builds_venv")),
        link_shaping=str(report.get("link_shaping") or "emulated"),
        energy=energy,
    )


def find_missing(facts: list[HostFacts], groups: dict[str, list[str]], manifest: Manifest | None) -> list[Missing]:
    """Every host must be reachable; with a manifest, its edge hosts (the first tier) and worker hosts
    (every later one) must have what it asks."""
    missing = [Missing(host.host, _not_examined(host)) for host in facts if not host.examined]
    if manifest is None:
        return missing
    edge, cloud = role_hosts(facts, groups, manifest)
    for host in _unique(edge + cloud):
        missing += [Missing(host.host, message) for message in missing_runtime(host)]
    for host in edge:
        missing += [Missing(host.host, message) for message in missing_for_links(host, manifest.link)]
        missing += [Missing(host.host, message) for message in missing_energy(host, "edge", manifest.energy.edge)]
    for host in cloud:
        missing += [Missing(host.host, message) for message in missing_for_device(host, manifest.worker.device)]
        missing += [Missing(host.host, message) for message in missing_energy(host, "cloud", manifest.energy.cloud)]
    return missing


def role_hosts(
    facts: list[HostFacts], groups: dict[str, list[str]], manifest: Manifest
) -> tuple[list[HostFacts], list[HostFacts]]:
    """The examined edge hosts (the manifest's first tier) and worker hosts (every later one)."""
    by_name = {host.host: host for host in facts if host.examined}
    first, *later = manifest.hosts.pipeline
    edge = [by_name[name] for name in groups.get(first, []) if name in by_name]
    cloud = [by_name[name] for group in later for name in groups.get(group, []) if name in by_name]
    return edge, cloud


def missing_energy(host: HostFacts, role: str, source: str) -> list[str]:
    """A power source the manifest names for the host's role that the harness there did not find
    (auto, none and a user's meter need nothing the doctor can see)."""
    if not names_hardware(source) or host.energy is None or source in host.energy:
        return []
    return [f"energy.{role} {source}: the harness there found {found_sources(host)}"]


def names_hardware(source: str) -> bool:
    """Whether ``source`` is a sensor a host has or lacks (not auto, none or a user's meter)."""
    return source in ("rapl", "nvml", "jetson")


def found_sources(host: HostFacts) -> str:
    return ", ".join(host.energy or ()) or "none"


def missing_runtime(host: HostFacts) -> list[str]:
    """The harness must import there, unless provisioning builds its venv (then python3 must be new enough)."""
    if host.harness is not None:
        return []
    if not host.builds_venv:
        return [f"the harness is not importable by {host.harness_python or 'its interpreter'}: {host.harness_error}"]
    version = _version(host.python)
    wanted = ".".join(map(str, HARNESS_PYTHON))
    if version is not None and version < HARNESS_PYTHON:
        return [f"provisioning builds the venv with Python {host.python}; the harness needs Python {wanted} or later"]
    return []


def missing_for_links(host: HostFacts, links: Iterable[LinkSpec]) -> list[str]:
    """What an edge host needs to shape each link as asked; emulated shaping needs nothing."""
    found: list[str] = []
    for link in links:
        if link.shaping == "tc" and host.link_shaping != "tc":
            found.append(
                f"link {_label(link)} asks for tc shaping, but the host shapes its link by {host.link_shaping} "
                "(harness_link_shaping)"
            )
            continue
        if (host.link_shaping if link.shaping == "auto" else link.shaping) != "tc":
            continue
        if host.tc is None:
            found.append("tc shaping needs the tc command (iproute2), which is not on the host")
        if host.root == "no":
            found.append(
                "tc shaping needs root: log in as root, allow passwordless sudo, or give ansible_become_password"
            )
        if not (host.has_qdisc("tbf") or host.has_qdisc("htb")):
            found.append(
                f"tc shaping needs the tbf or htb qdisc; the kernel's tbf is {_state(host, 'tbf')}, "
                f"htb is {_state(host, 'htb')}"
            )
        if link.delay_ns and not host.has_qdisc("netem"):
            found.append(f"link {_label(link)} needs netem for its delay under tc shaping; {_netem(host)}")
    return list(dict.fromkeys(found))


def missing_for_device(host: HostFacts, device: str) -> list[str]:
    """``worker.device: cuda[:N]`` needs N+1 CUDA devices on the cloud host, as torch (or else the driver) sees them."""
    if not device.startswith("cuda"):
        return []
    wanted = int(device.partition(":")[2] or 0) + 1
    if host.accelerators is not None:
        if len(host.accelerators) < wanted:
            return [f"worker.device {device}: torch {host.torch} there sees {_devices(len(host.accelerators))}"]
        return []
    if host.gpus is not None:
        if len(host.gpus) < wanted:
            return [f"worker.device {device}: nvidia-smi lists {_devices(len(host.gpus))}"]
        return []
    return [
        f"worker.device {device}: cannot tell whether the host has a CUDA device "
        "(the harness is not importable there and nvidia-smi is missing)"
    ]


def _harness_error(result: dict, interpreter_found: object) -> str:
    if result.get("rc") == 0:
        return "host-info printed no JSON"
    if interpreter_found is False:
        return "no such interpreter"
    return _last_line(result.get("stderr") or result.get("msg")) or "host-info did not run"


def _not_examined(host: HostFacts) -> str:
    return f"unreachable: {host.problem}" if not host.reachable else f"could not be examined: {host.problem}"


def _label(link: LinkSpec) -> str:
    return f"{link.rate} with {link.delay} delay" if link.delay_ns else link.rate


def _state(host: HostFacts, name: str) -> str:
    return host.qdiscs.get(name, "unknown")


def _netem(host: HostFacts) -> str:
    state = _state(host, "netem")
    if state == "not installed":
        return "the kernel builds sch_netem as a module, but it is not installed (Ubuntu: linux-modules-extra)"
    if state == "absent":
        return "the kernel has no netem (sch_netem)"
    return "cannot tell whether the kernel has netem (no kernel config or module list readable)"


def _devices(count: int) -> str:
    return "no CUDA device" if count == 0 else f"only {count} CUDA device{'s' if count > 1 else ''}"


def _root(system: dict, become: bool) -> str:
    if system.get("euid") == 0:
        return "yes"
    if become:
        return "become"
    return "sudo" if system.get("sudo") is True else "no"


def _unique(hosts: list[HostFacts]) -> list[HostFacts]:
    return list({host.host: host for host in hosts}.values())


def _version(text: str) -> tuple[int, int] | None:
    parts = text.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def _mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _json_object(text: object) -> dict | None:
    try:
        value = json.loads(str(text))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _last_line(text: object) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[-1].removeprefix("Task failed: ") if lines else ""


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _bool(value: object) -> bool:
    return value is True or str(value).lower() in ("true", "yes", "1")
