"""What a host runs the harness with: versions and accelerators, for the results' provenance.

Ansible's facts say what the machine is; this says what the harness sees on it (the torch build,
CUDA devices), printed as JSON by ``harness host-info`` for the runtime role to record.
"""

import platform
import resource
import sys

import torch

from harness import __version__
from harness.energy import available
from harness.errors import BadInput


def compute_device(name: str) -> torch.device:
    """The torch device ``name`` (cpu, cuda or cuda:N) names, once this host is known to have it."""
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise BadInput(f"--device {name}: expected cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BadInput(f"--device {name}: torch here has no CUDA device")
        if (device.index or 0) >= torch.cuda.device_count():
            raise BadInput(f"--device {name}: torch here has {torch.cuda.device_count()} CUDA device(s)")
    return device


def host_info() -> dict:
    cuda = torch.cuda.is_available()
    devices = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())] if cuda else []
    return {
        "harness": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "accelerators": devices,
        "torch_threads": torch.get_num_threads(),
        "energy": available(),
    }


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (Linux counts in KiB, macOS in bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024
