"""Example external power meters, named in a manifest as ``energy: {edge: experiments.meters:NAME}``.

A Raspberry Pi has no power sensor of its own: a lab measures it with an external meter (a USB
power meter, a smart plug, a shunt on the bench supply) whose logger keeps the latest reading where
the harness can read it. A meter is a function of no arguments returning the host's watts now; the
harness samples it on a thread of its own and integrates.
"""

import os
from pathlib import Path


def watts_file() -> float:
    """The latest reading a meter's logger keeps in a file, one number in watts: the file that
    ``HARNESS_WATTS_FILE`` names, ``/run/split-harness/watts`` by default."""
    path = Path(os.environ.get("HARNESS_WATTS_FILE", "/run/split-harness/watts"))
    return float(path.read_text().split()[0])
