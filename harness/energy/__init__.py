"""Energy: a host's power source (RAPL, NVML, Jetson rails, a user's meter) and joules over windows."""

from harness.energy.meter import EnergyMeter, Mark, open_meter
from harness.energy.sources import EXPECTED, NAMES, available, open_source

__all__ = ["EXPECTED", "NAMES", "EnergyMeter", "Mark", "available", "open_meter", "open_source"]
