"""The lab's dealings with the operating system: privileges, tools, commands and its own processes.

Every command's failure becomes a ``LabError`` that quotes the command and its last line of stderr,
so a half-built lab says which step broke. Processes are only ever ended by pid, and only the ones
the lab started or that run inside the lab's own namespaces.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from harness.errors import BadInput, HarnessError

NEEDS_ROOT = "harness lab needs root: network namespaces, veth links and sshd (run it with sudo)"
_PACKAGES = {
    "ip": "iproute2",
    "tc": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "sshd": "openssh-server",
}
_TOOLS = ("ip", "ssh", "ssh-keygen", "sshd")
"""What every lab needs; ``tc`` only a lab that shapes its links."""
_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


class LabError(HarnessError):
    """A step of making or removing the lab failed; the message names the step and the reason."""

    exit_code = 1


def require_root() -> None:
    if os.geteuid() != 0:
        raise BadInput(NEEDS_ROOT)


def tool(name: str) -> str:
    """The absolute path of a tool (sshd must be started by absolute path to re-execute itself)."""
    path = shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN))
    if path is None:
        raise BadInput(f"harness lab needs `{name}`: install it (apt-get install -y {_PACKAGES.get(name, name)})")
    return path


def require_tools() -> None:
    for name in _TOOLS:
        tool(name)


def run(argv: list[str], step: str) -> str:
    """Run one command to completion; its stdout, or a ``LabError`` naming ``step``."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        raise LabError(f"{step}: `{' '.join(argv)}` did not finish in 30 s") from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit status {result.returncode}"
        raise LabError(f"{step}: `{' '.join(argv)}` failed: {reason}")
    return result.stdout


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def command_line(pid: int) -> str:
    """The command line as ``ps`` shows it (a daemon may have rewritten it into one string)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ").strip()
    except OSError:
        return ""


def stop(pids: list[int], timeout: float = 5.0) -> list[int]:
    """SIGTERM each pid, SIGKILL what is left after ``timeout``; the pids still alive after that."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.02)
    for pid in pids:
        if alive(pid):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.02)
    return [pid for pid in pids if alive(pid)]


def _signal(pid: int, number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, number)
