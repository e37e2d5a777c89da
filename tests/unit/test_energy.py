"""Power sources and joules over windows: a powercap tree this test writes, whose counters advance
at a known power and wrap; Jetson rails; a user's meter; a host with no source."""

import json
import os
import threading
import time
from pathlib import Path

import pytest

from harness.energy import EnergyMeter, available, open_source
from harness.errors import BadInput

WATTS = 12.0
RANGE_UJ = 3_000_000
"""A wrap every half second per package at 6 W: some windows below cross one. Windows are a
tenth of a second and more, as long beside the fake counter's scheduling (a thread of this test,
late by a millisecond when the machine is busy) as an inference's is beside RAPL's own update."""


class PowercapTree:
    """``intel-rapl:0`` and ``intel-rapl:1`` (two packages, each drawing half of ``WATTS``) and a
    subzone inside the first (listed at the top too, as sysfs does). Each package's ``energy_uj``
    is a named pipe whose writer computes the counter at the moment it is opened for reading,
    modulo the range, as the kernel computes it when read; one reader at a time (a reader that
    has not closed it yet may see later values on lines after its own, and keeps the first)."""

    def __init__(self, root: Path):
        self.root = root
        self._stop = threading.Event()
        self._started = time.monotonic_ns()
        self.zones = [root / "intel-rapl:0", root / "intel-rapl:1"]
        subzone = root / "intel-rapl:0" / "intel-rapl:0:0"
        for zone in [*self.zones, subzone]:
            zone.mkdir(parents=True)
            (zone / "max_energy_range_uj").write_text(f"{RANGE_UJ}\n")
        (subzone / "energy_uj").write_text("0\n")
        (root / "intel-rapl:0:0").symlink_to(subzone)
        self._threads = []
        for number, zone in enumerate(self.zones):
            os.mkfifo(zone / "energy_uj")
            thread = threading.Thread(target=self._serve, args=(zone / "energy_uj", number * 1_000_000), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, fifo: Path, offset: int) -> None:
        """Answer each read with the counter now; the zones' counters are not in step."""
        while not self._stop.is_set():
            try:
                with fifo.open("w") as pipe:
                    microjoules = int(WATTS / 2 * (time.monotonic_ns() - self._started) / 1e3)
                    pipe.write(f"{(microjoules + offset) % RANGE_UJ}\n")
            except BrokenPipeError:
                continue

    def close(self) -> None:
        self._stop.set()
        for zone in self.zones:
            os.close(os.open(zone / "energy_uj", os.O_RDONLY | os.O_NONBLOCK))
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture
def powercap(tmp_path):
    tree = PowercapTree(tmp_path / "powercap")
    yield tree
    tree.close()


def test_rapl_joules_over_a_window_are_the_power_times_the_window_across_wraps(powercap):
    meter = EnergyMeter(open_source("rapl", powercap=powercap.root))
    assert meter.name == "rapl" and len(meter.source.zones) == 2, "packages only, not their subzones"
    wrapped = False
    for seconds in (0.1, 0.2, 0.3, 0.4):
        start = meter.mark()
        time.sleep(seconds)
        end = meter.mark()
        wrapped |= any(after < before for before, after in zip(start.reading, end.reading, strict=True))
        expected = WATTS * (end.at_ns - start.at_ns) / 1e9
        assert meter.joules(start, end) == pytest.approx(expected, rel=0.02), seconds
    meter.close()
    assert wrapped, "a second at 6 W per package wraps a 3 J counter at least once"


def _five_watts() -> float:
    return 5.0


def test_a_meter_is_sampled_and_integrated_and_charges_a_window_shorter_than_a_sample():
    meter = EnergyMeter(open_source("tests.unit.test_energy:_five_watts"), rate_hz=50)
    start = meter.mark()
    time.sleep(0.2)
    end = meter.mark()
    assert meter.joules(start, end) == pytest.approx(5.0 * (end.at_ns - start.at_ns) / 1e9, rel=0.02)
    short_start = meter.mark()
    time.sleep(0.004)
    short_end = meter.mark()
    assert meter.joules(short_start, short_end) == pytest.approx(5.0 * (short_end.at_ns - short_start.at_ns) / 1e9)
    meter.close()


def test_jetson_rails_add_their_channels(tmp_path):
    iio = tmp_path / "ina3221x" / "1-0040" / "iio:device0"
    iio.mkdir(parents=True)
    for channel, milliwatts in enumerate((1200, 800, 0)):
        (iio / f"in_power{channel}_input").write_text(f"{milliwatts}\n")
    hwmon = tmp_path / "ina3221" / "1-0041" / "hwmon" / "hwmon3"
    hwmon.mkdir(parents=True)
    (hwmon / "in1_input").write_text("5000\n")
    (hwmon / "curr1_input").write_text("400\n")
    source = open_source("jetson", i2c=tmp_path)
    assert source.watts() == pytest.approx(1.2 + 0.8 + 5.0 * 0.4)


def test_a_host_without_a_source_has_none_and_naming_one_it_lacks_says_what_was_looked_for(tmp_path):
    assert open_source("auto", powercap=tmp_path, i2c=tmp_path) is None
    assert open_source("none") is None
    assert available(powercap=tmp_path, i2c=tmp_path) in ([], ["nvml"])
    with pytest.raises(BadInput, match=rf"energy source 'rapl': no readable intel-rapl:N/energy_uj under {tmp_path}"):
        open_source("rapl", powercap=tmp_path)
    with pytest.raises(BadInput, match=rf"energy source 'jetson': no INA3221 rails under {tmp_path}"):
        open_source("jetson", i2c=tmp_path)
    with pytest.raises(BadInput, match="energy source 'battery': expected auto, none, rapl, nvml, jetson or"):
        open_source("battery")
    with pytest.raises(BadInput, match=r"energy source 'experiments\.nowhere:watts': cannot import module"):
        open_source("experiments.nowhere:watts")


def test_profile_energy_gives_every_layer_its_joules_and_refuses_a_host_without_a_source(tmp_path):
    from click.testing import CliRunner

    from harness.cli import cli

    command = ["model", "profile", "experiments.models:tiny_skipnet", "-g", "node", "--repeats", "3", "--json"]
    metered = CliRunner().invoke(cli, [*command, "--energy", "--energy-source", "tests.unit.test_energy:_five_watts"])
    assert metered.exit_code == 0, metered.output
    layers = json.loads(metered.stdout)["layers"]
    assert len(layers) == 11 and all(layer["joules"] > 0 for layer in layers)
    plain = CliRunner().invoke(cli, command)
    assert "joules" not in json.loads(plain.stdout)["layers"][0]
    rapl = ["--energy", "--energy-source", "rapl", "--powercap-root", str(tmp_path)]
    missing = CliRunner().invoke(cli, [*command, *rapl])
    assert missing.exit_code == 2 and missing.stdout == ""
    expected = f"energy source 'rapl': no readable intel-rapl:N/energy_uj under {tmp_path}"
    assert missing.stderr == f"harness: error: {expected}\n"


def test_a_manifest_names_each_roles_source_and_a_name_that_means_nothing_stops_at_its_line(tmp_path):
    from harness.manifest import load_manifest

    path = tmp_path / "energy.yml"
    text = "name: tiny\nmodel:\n  name: alexnet\nlink:\n  rate: 4MB/s\nenergy:\n  edge: {edge}\n  cloud: nvml\n"
    path.write_text(text.format(edge="experiments.lab:meter_watts"))
    energy = load_manifest(path, []).manifest.energy
    assert (energy.edge, energy.cloud) == ("experiments.lab:meter_watts", "nvml")
    path.write_text(text.format(edge="battery"))
    with pytest.raises(BadInput) as caught:
        load_manifest(path, [])
    assert str(caught.value) == (
        f"{path}:7: field energy.edge: expected auto, none, rapl, nvml, jetson or package.module:function "
        "returning watts (got 'battery')"
    )


def test_the_doctor_says_which_host_lacks_the_source_a_manifest_names():
    from harness.ansible.doctor import HostFacts, missing_energy

    gpu = HostFacts("gpu1", ("cloud",), energy=("rapl",))
    assert missing_energy(gpu, "cloud", "nvml") == ["energy.cloud nvml: the harness there found rapl"]
    assert missing_energy(gpu, "cloud", "rapl") == [] and missing_energy(gpu, "cloud", "auto") == []
    assert missing_energy(HostFacts("pi", ("edge",), energy=()), "edge", "jetson") == [
        "energy.edge jetson: the harness there found none"
    ]
    assert missing_energy(HostFacts("old", ("edge",)), "edge", "rapl") == [], "an older harness does not say"
