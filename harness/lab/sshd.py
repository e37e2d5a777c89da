"""An OpenSSH server per lab host, started inside the host's namespace from the host's own directory.

All namespaces share one filesystem, so each host's key, configuration, pid file and log live in
its own directory, and the server is told everything by ``-f``: nothing in /etc/ssh is read or
changed, and the machine's own sshd (if any) is never involved. A recorded pid is only signalled
while its command line still names that host's configuration, so a recycled pid is left alone.
"""

import time
from pathlib import Path

from harness.lab import system
from harness.lab.system import LabError, run, tool

CONFIG = "sshd_config"
HOST_KEY = "ssh_host_ed25519_key"
PIDFILE = "sshd.pid"
LOG = "sshd.log"
PRIVSEP_DIR = Path("/run/sshd")
_START_SECONDS = 10.0


def make_key(path: Path, comment: str) -> list[Path]:
    """An ed25519 pair without passphrase; the two files it wrote."""
    run([tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], f"make key {path}")
    return [path, path.with_name(path.name + ".pub")]


def write_config(host_dir: Path, address: str, port: int, authorized_keys: Path) -> Path:
    config = host_dir / CONFIG
    config.write_text(
        "# Written by `harness lab up` for this lab host; removed by `harness lab down`.\n"
        f"ListenAddress {address}\n"
        f"Port {port}\n"
        f"HostKey {host_dir / HOST_KEY}\n"
        f"PidFile {host_dir / PIDFILE}\n"
        f"AuthorizedKeysFile {authorized_keys}\n"
        "PermitRootLogin prohibit-password\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "UseDNS no\n"
        "PrintMotd no\n"
        "Subsystem sftp internal-sftp\n"
    )
    return config


def start(namespace: str, host_dir: Path) -> int:
    """Start the daemon inside ``namespace`` and return its pid once it listens (it writes the pid
    file only after binding its address)."""
    PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    config, pidfile, log = host_dir / CONFIG, host_dir / PIDFILE, host_dir / LOG
    pidfile.unlink(missing_ok=True)
    run(
        ["ip", "netns", "exec", namespace, tool("sshd"), "-f", str(config), "-E", str(log)],
        f"start sshd in {namespace}",
    )
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        if text.isdigit() and serves(int(text), config):
            return int(text)
        time.sleep(0.02)
    raise LabError(f"sshd in {namespace} did not start within {_START_SECONDS:.0f} s: {_last_line(log)}")


def serves(pid: int, config: Path) -> bool:
    """Whether ``pid`` is alive and is the sshd started with ``config``."""
    return system.alive(pid) and f"-f {config} " in system.command_line(pid) + " "


def stop(pid: int, config: Path) -> None:
    if serves(pid, config) and system.stop([pid]):
        raise LabError(f"sshd (pid {pid}, {config}) did not stop")


def _last_line(log: Path) -> str:
    try:
        lines = log.read_text().strip().splitlines()
    except OSError:
        return f"no log at {log}"
    return lines[-1] if lines else f"nothing in {log}"
