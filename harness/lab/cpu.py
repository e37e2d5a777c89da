"""Slowing a lab host down like an edge device: a cgroup v1 ``cpu`` group with a CFS quota.

The host's sshd joins the group, so every session, and every process Ansible starts through it,
inherits the quota. CFS quota makes work wait for the next period, which distorts per-layer
latency: the quota is recorded in the lab state and the inventory (``lab_cpu_quota``) so results
say which emulation was used.

The period is 2 ms, not the kernel's 100 ms: with 100 ms a half-core host ran a 40 ms AlexNet
inference at full speed and stalled the next one for 50 ms, so medians per cut swung by 1.6x with
the phase of the period. With a period shorter than a layer the wait is spread over every layer.
Below half a core the period grows just enough for the quota to keep the kernel's 1 ms minimum
(a quarter of a core: 1 ms every 4 ms).
"""

import math
import os
from pathlib import Path

from harness.errors import BadInput
from harness.lab.system import LabError

CPU_ROOT = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 2_000
MIN_QUOTA_US = 1_000
"""The least quota the kernel accepts."""


def check_controller() -> None:
    """Fail before anything is made when the quota cannot be applied here."""
    quota = CPU_ROOT / "cpu.cfs_quota_us"
    if not quota.exists() or not os.access(CPU_ROOT, os.W_OK):
        raise BadInput(
            f"cpu_quota needs the cgroup v1 cpu controller, writable at {CPU_ROOT} (with cpu.cfs_quota_us), "
            "which this machine does not have: remove cpu_quota from the lab spec"
        )


def group_path(name: str) -> Path:
    return CPU_ROOT / name


def make_group(name: str) -> Path:
    path = group_path(name)
    try:
        path.mkdir()
    except OSError as error:
        raise LabError(f"create cgroup {path}: {error.strerror}") from None
    return path


def period_us(cpu_quota: float) -> int:
    """The CFS period for ``cpu_quota`` of one core: 2 ms, longer where the quota would fall short of 1 ms."""
    return max(PERIOD_US, math.ceil(MIN_QUOTA_US / cpu_quota))


def quota_us(cpu_quota: float) -> int:
    """Microseconds of CPU time per period for ``cpu_quota`` of one core."""
    return round(cpu_quota * period_us(cpu_quota))


def set_quota(path: Path, cpu_quota: float) -> None:
    _write(path / "cpu.cfs_period_us", period_us(cpu_quota))
    _write(path / "cpu.cfs_quota_us", quota_us(cpu_quota))


def add_process(path: Path, pid: int) -> None:
    _write(path / "cgroup.procs", pid)


def pids(path: Path) -> list[int]:
    try:
        return [int(line) for line in (path / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


def remove_group(path: Path) -> None:
    """Remove an empty group (its processes must have been stopped first)."""
    try:
        path.rmdir()
    except FileNotFoundError:
        pass
    except OSError as error:
        raise LabError(f"remove cgroup {path}: {error.strerror}") from None


def _write(path: Path, value: int) -> None:
    try:
        path.write_text(f"{value}\n")
    except OSError as error:
        raise LabError(f"write {value} to {path}: {error.strerror}") from None
