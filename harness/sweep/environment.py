"""Provenance of a sweep: package versions and git revision here, each host's facts and link as collected."""

import json
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from harness.ansible.project import ROOT

PACKAGES = (
    "split-harness",
    "torch",
    "torchvision",
    "numpy",
    "pyzmq",
    "blosc2",
    "pydantic",
    "ansible-core",
    "ansible-runner",
    "pandas",
    "pyarrow",
    "matplotlib",
)


def environment(results: Path, inventory: Path) -> dict:
    return {
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "controller": {"python": platform.python_version(), "platform": platform.platform()},
        "packages": {name: _version(name) for name in PACKAGES},
        "git": _git(),
        "inventory": str(inventory),
        "hosts": _by_host(results, "host.json"),
        "links": _links(results),
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git() -> dict:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    revision = git("rev-parse", "HEAD")
    return {"revision": revision or None, "dirty": bool(git("status", "--porcelain")) if revision else None}


def _by_host(results: Path, name: str) -> dict[str, dict]:
    """Each host's collected JSON file ``name``, such as its facts (host.json)."""
    return {path.parent.name: _read(path) for path in sorted(results.glob(f"hosts/*/{name}"))}


def _links(results: Path) -> dict[str, list[dict]]:
    """Each edge host's link records: one per link tc shaped (``link-4MBps.json``), one for the runs no
    tc shaped (``link.json``), each naming its runs."""
    found: dict[str, list[dict]] = {}
    for path in sorted(results.glob("hosts/*/link*.json")):
        found.setdefault(path.parent.name, []).append(_read(path))
    return found


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {"error": f"{path} is not JSON"}
