"""What ``harness doctor`` shows: one row per host, then what is missing, as a table or as JSON."""

from dataclasses import asdict
from typing import Any

from rich.table import Table

from harness.ansible.doctor import QDISCS, USABLE, DoctorReport, HostFacts
from harness.console import make_table

COLUMNS = [
    "host",
    "groups",
    "reachable",
    "arch",
    "cores>",
    "memory>",
    "accelerators",
    "python",
    "torch",
    "qdiscs",
    "tc",
    "root",
    "shaping",
    "energy",
]


def doctor_table(report: DoctorReport) -> Table:
    table = make_table(
        f"{report.inventory}: {len(report.hosts)} host{'s' if len(report.hosts) != 1 else ''}",
        COLUMNS,
        caption="qdiscs: those the kernel has, built in, loaded or as a module; no X: it lacks X",
    )
    for host in report.hosts:
        if not host.examined:
            table.add_row(host.host, ", ".join(host.groups), _unexamined(host), *[""] * (len(COLUMNS) - 3))
            continue
        table.add_row(
            host.host,
            ", ".join(host.groups),
            "yes",
            f"{host.arch} ({host.board})" if host.board else host.arch,
            str(host.cores),
            f"{host.memory_bytes / 2**30:.1f} GiB",
            _accelerators(host),
            host.python,
            host.torch or "not installed",
            _qdiscs(host),
            "yes" if host.tc else "not found",
            host.root,
            host.link_shaping,
            _energy(host),
        )
    return table


def missing_lines(report: DoctorReport) -> list[str]:
    return [f"missing on {item}" for item in report.missing]


def summary(report: DoctorReport) -> str:
    purpose = f" for {report.manifest}" if report.manifest else ""
    if not report.missing:
        return f"nothing missing on {report.inventory}{purpose}"
    count = len(report.missing)
    hosts = len({item.host for item in report.missing})
    return (
        f"{count} thing{'s' if count != 1 else ''} missing on {hosts} host{'s' if hosts != 1 else ''} "
        f"of {report.inventory}{purpose}"
    )


def doctor_record(report: DoctorReport) -> dict[str, Any]:
    return {
        "inventory": str(report.inventory),
        "manifest": str(report.manifest) if report.manifest else None,
        "hosts": [asdict(host) for host in report.hosts],
        "missing": [asdict(item) for item in report.missing],
    }


def _unexamined(host: HostFacts) -> str:
    """The gist (an SSH error ends with it: "Connection refused"); the whole reason is in the lines below."""
    gist = host.problem.rsplit(": ", 1)[-1]
    return f"no: {gist}" if not host.reachable else f"yes, not examined: {gist}"


def _energy(host: HostFacts) -> str:
    """The power sources the harness found there (RAPL, NVML, Jetson rails), or why none shows."""
    if host.energy is None:
        return "unknown"
    return ", ".join(host.energy) or "none (a meter: --energy module:function)"


def _accelerators(host: HostFacts) -> str:
    if host.accelerators is not None:
        return ", ".join(host.accelerators) or "none"
    if host.gpus is not None:
        return ", ".join(host.gpus) + " (nvidia-smi)" if host.gpus else "none (nvidia-smi)"
    return "unknown"


def _qdiscs(host: HostFacts) -> str:
    if all(state == "unknown" for state in host.qdiscs.values()):
        return "unknown"
    return ", ".join(_qdisc(name, host.qdiscs.get(name, "unknown")) for name in QDISCS)


def _qdisc(name: str, state: str) -> str:
    if state in USABLE:
        return name
    return f"no {name}" if state == "absent" else f"{name} {state}"
