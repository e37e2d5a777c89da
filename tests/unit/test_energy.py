"""Power sources and joules over windows: a powercap tree this test writes, whose counters advance
at a known power and wrap; an NVML stand-in whose counter moves in steps, as NVML's does; Jetson
rails; a user's meter; a host with no source."""

import json
import sys
import time
import types
from pathlib import Path

import pytest

from harness.energy import EnergyMeter, available, open_meter, open_source
from harness.errors import BadInput

WATTS = 12.0
RANGE_UJ = 5_000_000
"""A wrap every 0.83 s per package at 6 W: of the windows below, a second in all, one crosses it
(a window is never longer than a wrap, as on a real host, where the range is 262 kJ)."""


class PowercapTree:
    """``intel-rapl:0`` and ``intel-rapl:1`` (two packages, each drawing half of ``WATTS``, their
    counters not in step) and a subzone inside the first (listed at the top too, as sysfs does).
    ``advance()`` writes each package's counter for this moment, modulo the range, as the kernel
    would give it if read now; the test calls it just before the meter reads."""

    def __init__(self, root: Path):
        self.root = root
        self.started_ns = time.monotonic_ns()
        self.zones = [root / "intel-rapl:0", root / "intel-rapl:1"]
        subzone = root / "intel-rapl:0" / "intel-rapl:0:0"
        for zone in [*self.zones, subzone]:
            zone.mkdir(parents=True)
            (zone / "max_energy_range_uj").write_text(f"{RANGE_UJ}\n")
        (subzone / "energy_uj").write_text("0\n")
        (root / "intel-rapl:0:0").symlink_to(subzone)
        self.advance()

    def advance(self) -> int:
        """Write the counters for now; the moment they stand for."""
        now = time.monotonic_ns()
        microjoules = int(WATTS / 2 * (now - self.started_ns) / 1e3)
        for number, zone in enumerate(self.zones):
            (zone / "energy_uj").write_text(f"{(microjoules + number * 1_000_000) % RANGE_UJ}\n")
        return now


def test_rapl_joules_over_a_window_are_the_power_times_the_window_across_wraps(tmp_path):
    tree = PowercapTree(tmp_path / "powercap")
    meter = EnergyMeter(open_source("rapl", powercap=tree.root))
    assert meter.name == "rapl" and len(meter.source.zones) == 2, "packages only, not their subzones"
    wrapped = False
    for seconds in (0.1, 0.2, 0.3, 0.4):
        began = tree.advance()
        start = meter.mark()
        time.sleep(seconds)
        ended = tree.advance()
        end = meter.mark()
        wrapped |= any(after < before for before, after in zip(start.reading, end.reading, strict=True))
        expected = WATTS * (ended - began) / 1e9
        assert meter.joules(start, end) == pytest.approx(expected, rel=0.02), seconds
        assert start.at_ns >= began and end.at_ns >= ended, "a reading is timed as it returns"
    meter.close()
    assert wrapped, "a second at 6 W per package wraps a 5 J counter at least once"


def _five_watts() -> float:
    return 5.0


def twelve_watts() -> float:
    """A meter of ``WATTS``, for the worker and edge of tests/integration/test_energy_records.py."""
    return WATTS


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


GPU_WATTS = 300.0


class SteppedGpu:
    """A stand-in for pynvml: one GPU drawing ``GPU_WATTS`` whose total energy, in millijoules,
    moves only once every ``step_s``, as NVML's does (every 20 to 100 ms, by GPU and driver)."""

    def __init__(self, step_s: float):
        self.started_ns = time.monotonic_ns()
        self.step_ns = int(step_s * 1e9)
        self.moving = True

    def module(self) -> types.ModuleType:
        module = types.ModuleType("pynvml")
        module.nvmlInit = lambda: None
        module.nvmlDeviceGetHandleByIndex = lambda index: index
        module.nvmlDeviceGetTotalEnergyConsumption = self.millijoules
        return module

    def millijoules(self, _handle) -> int:
        if not self.moving:
            return 5_000
        steps = (time.monotonic_ns() - self.started_ns) // self.step_ns
        return int(GPU_WATTS * steps * self.step_ns / 1e6)


def _stepped_gpu(monkeypatch, step_s: float) -> SteppedGpu:
    gpu = SteppedGpu(step_s)
    monkeypatch.setitem(sys.modules, "pynvml", gpu.module())
    return gpu


def test_nvml_is_interpolated_between_its_steps_so_a_window_within_one_is_charged_its_share(monkeypatch):
    _stepped_gpu(monkeypatch, 0.1)
    meter = open_meter("auto", device="cuda:0", rate_hz=1000)
    assert meter.name == "nvml", "auto takes NVML for a worker on a CUDA device"
    for seconds in (0.004, 0.02, 0.004, 0.35, 0.004):
        start = meter.mark()
        time.sleep(seconds)
        end = meter.mark()
        expected = GPU_WATTS * (end.at_ns - start.at_ns) / 1e9
        assert meter.joules(start, end) == pytest.approx(expected, rel=0.05), seconds
    assert meter.resolution_s == pytest.approx(0.1, rel=0.05)
    meter.close()


def test_an_nvml_counter_that_never_moves_is_refused_by_name_and_passed_over_by_auto(monkeypatch, tmp_path):
    _stepped_gpu(monkeypatch, 0.1).moving = False
    monkeypatch.setattr("harness.energy.meter.STEP_WAIT_S", 0.05)
    with pytest.raises(BadInput, match=r"^energy source 'nvml': its counter did not move in 0.05 s$"):
        open_meter("nvml", device="cuda")
    tree = PowercapTree(tmp_path / "powercap")
    assert open_meter("auto", device="cuda", powercap=tree.root).name == "rapl"
    assert open_meter("auto", device="cuda", powercap=tmp_path / "none", i2c=tmp_path) is None


def test_energy_per_layer_runs_each_stretch_for_ten_of_the_sensors_steps(monkeypatch):
    from torch import nn

    from harness.energy.layers import energy_per_layer
    from harness.model import Granularity, build_split_graph
    from harness.model.profile import profile
    from harness.model.sources import LoadedModel

    _stepped_gpu(monkeypatch, 0.03)
    meter = open_meter("nvml", rate_hz=1000)
    model = LoadedModel("conv_relu", nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), (1, 3, 16, 16))
    split = build_split_graph(model, Granularity.MODULE)
    layers = energy_per_layer(split, meter, profile(split, repeats=3, warmup=1), min_window_s=0.01)
    meter.close()
    assert [layer.name for layer in layers] == ["0", "1"]
    for layer in layers:
        window_s = layer.joules * layer.runs / GPU_WATTS
        assert 0.3 * 0.95 <= window_s <= 0.4, (layer, window_s)


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
    assert open_meter("auto", powercap=tmp_path, i2c=tmp_path) is None
    assert open_meter("none") is None
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
    nothing = CliRunner().invoke(cli, [*command, "--energy", "--powercap-root", str(tmp_path)])
    assert nothing.exit_code == 2 and nothing.stdout == ""
    assert nothing.stderr == (
        "harness: error: --energy: this host has no power source (auto tried rapl, jetson); name a meter with "
        "--energy-source package.module:function returning watts, like experiments.meters:watts_file\n"
    )


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
