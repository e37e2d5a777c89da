"""The power sources a host may have, found from what it exposes.

Three kinds. A counter gives the energy used since some moment and moves finely: RAPL's
``energy_uj`` under powercap (x86 packages) moves about once a millisecond. The joules of a window
are the difference of two readings taken at its ends, each zone's wrap undone; reading at the ends
rather than sampling loses nothing between samples. A stepped counter also gives energy used, but
moves in steps longer than most windows: NVML's total energy (NVIDIA GPUs since Volta) is updated
every 20 to 100 ms, so a GPU inference of a few milliseconds read at its ends would be charged
nothing, or a whole step. It is sampled on a thread and interpolated between its steps
(``meter.py``). A meter gives power now: the INA3221 rails a Jetson exposes in sysfs, or an
external meter as a user's ``package.module:function`` returning watts (a Raspberry Pi has no
sensor of its own). A meter is sampled at a set rate on a thread of its own and integrated.

``auto`` takes NVML for a worker on a CUDA device, else RAPL, else the Jetson rails, else none (the
first that gives a working meter: an NVML counter that never moves is passed over); a host without
a source records empty energy, never zero. Naming a source the host lacks is an error
that says what was looked for.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.errors import BadInput

POWERCAP = Path("/sys/class/powercap")
I2C_DRIVERS = Path("/sys/bus/i2c/drivers")
NAMES = ("auto", "none", "rapl", "nvml", "jetson")
EXPECTED = "auto, none, rapl, nvml, jetson or package.module:function returning watts"
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")


class Counter(Protocol):
    name: str
    resolution_s: float

    def read(self) -> tuple[int, ...]: ...

    def joules(self, before: tuple[int, ...], after: tuple[int, ...]) -> float: ...


class SteppedCounter(Protocol):
    name: str

    def total_joules(self) -> float: ...


class Meter(Protocol):
    name: str

    def watts(self) -> float: ...


Source = Counter | SteppedCounter | Meter


@dataclass(frozen=True)
class _Zone:
    energy: Path
    range_uj: int


class Rapl:
    """The top-level RAPL zones under powercap (one per CPU package; their subzones, cores and
    uncore, are inside them and not added again), in microjoules."""

    name = "rapl"
    resolution_s = 1e-3

    def __init__(self, root: Path = POWERCAP):
        zones = []
        for zone in sorted(root.glob("intel-rapl:*")):
            if not _PACKAGE_ZONE.match(zone.name):
                continue
            try:
                zone_range = _first_number(zone / "max_energy_range_uj")
                _first_number(zone / "energy_uj")
            except (OSError, ValueError, IndexError):
                continue
            zones.append(_Zone(zone / "energy_uj", zone_range))
        if not zones:
            raise BadInput(f"energy source 'rapl': no readable intel-rapl:N/energy_uj under {root}")
        self.zones = tuple(zones)

    def read(self) -> tuple[int, ...]:
        return tuple(_first_number(zone.energy) for zone in self.zones)

    def joules(self, before: tuple[int, ...], after: tuple[int, ...]) -> float:
        """Each zone's rise, a wrap of its counter undone (a window is far shorter than a wrap)."""
        rise = sum((end - start) % zone.range_uj for zone, start, end in zip(self.zones, before, after, strict=True))
        return rise / 1e6


class Nvml:
    """An NVIDIA GPU's total energy since the driver loaded (nvidia-ml-py), a stepped counter."""

    name = "nvml"

    def __init__(self, index: int = 0):
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except (ImportError, OSError) as error:
            raise BadInput(f"energy source 'nvml': {error}") from None
        except Exception as error:  # pynvml raises its own NVMLError for every failure
            raise BadInput(f"energy source 'nvml': GPU {index} gives no energy counter ({error})") from None
        self._read = pynvml.nvmlDeviceGetTotalEnergyConsumption

    def total_joules(self) -> float:
        """The counter, kept by the driver in millijoules."""
        return self._read(self._handle) / 1e3


class JetsonRails:
    """The INA3221 rails of a Jetson: each channel's power in milliwatts (``in_power*_input``, the
    older driver), or its bus voltage in millivolts times its current in milliamperes (hwmon)."""

    name = "jetson"

    def __init__(self, root: Path = I2C_DRIVERS):
        self.powers = tuple(sorted(root.glob("ina3221x/*/iio:device*/in_power*_input")))
        self.pairs = tuple(
            (voltage, voltage.with_name(voltage.name.replace("in", "curr", 1)))
            for voltage in sorted(root.glob("ina3221/*/hwmon/hwmon*/in[1-3]_input"))
            if voltage.with_name(voltage.name.replace("in", "curr", 1)).is_file()
        )
        if not self.powers and not self.pairs:
            raise BadInput(f"energy source 'jetson': no INA3221 rails under {root}")

    def watts(self) -> float:
        power = sum(int(path.read_text()) for path in self.powers) / 1e3
        return power + sum(int(volts.read_text()) * int(amps.read_text()) for volts, amps in self.pairs) / 1e6


class UserMeter:
    """An external meter: a user's function returning the host's watts now."""

    def __init__(self, name: str):
        from harness.model.user_code import user_function

        self.name = name
        self._read = user_function("energy source", name)

    def watts(self) -> float:
        return float(self._read())


def check_source_name(spec: str) -> str:
    """``spec`` if it can name a source (whether this host has it is for the host to say)."""
    module, colon, function = spec.partition(":")
    named = colon and function.isidentifier() and all(part.isidentifier() for part in module.split("."))
    if spec not in NAMES and not named:
        raise BadInput(f"energy source '{spec}': expected {EXPECTED}")
    return spec


def auto_order(device: str) -> list[str]:
    """The sensors ``auto`` tries, in order: NVML first for a worker on a CUDA device."""
    return (["nvml"] if device.startswith("cuda") else []) + ["rapl", "jetson"]


def open_source(spec: str, device: str = "cpu", powercap: Path = POWERCAP, i2c: Path = I2C_DRIVERS) -> Source | None:
    """The source ``spec`` names on this host (None for ``none``). ``auto`` names none of its own:
    ``open_meter`` tries each of ``auto_order`` until one gives a working meter."""
    check_source_name(spec)
    if spec == "auto":
        raise ValueError("open_source takes a source's name; open_meter resolves auto")
    if spec == "none":
        return None
    if ":" in spec:
        return UserMeter(spec)
    builders = {"rapl": lambda: Rapl(powercap), "nvml": lambda: Nvml(_gpu(device)), "jetson": lambda: JetsonRails(i2c)}
    return builders[spec]()


def available(powercap: Path = POWERCAP, i2c: Path = I2C_DRIVERS) -> list[str]:
    """The sources this host has, for ``harness host-info`` and the doctor."""
    found = []
    for name in ("rapl", "nvml", "jetson"):
        try:
            open_source(name, powercap=powercap, i2c=i2c)
        except BadInput:
            continue
        found.append(name)
    return found


def _first_number(path: Path) -> int:
    """The number a sysfs attribute holds (its first line)."""
    return int(path.read_text().split()[0])


def _gpu(device: str) -> int:
    _, _, index = device.partition(":")
    return int(index) if index.isdigit() else 0
