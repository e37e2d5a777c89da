"""What a host runs the harness with: versions and accelerators, for the results' provenance.

Ansible's facts say what the machine is; this says what the harness sees on it (the torch build,
CUDA devices), printed as JSON by ``harness host-info`` for the runtime role to record.
"""

import platform

import torch

from harness import __version__


def host_info() -> dict:
    cuda = torch.cuda.is_available()
    devices = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())] if cuda else []
    return {
        "harness": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "accelerators": devices,
        "torch_threads": torch.get_num_threads(),
    }
