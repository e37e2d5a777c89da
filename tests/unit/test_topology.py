"""The one link ``tc`` shapes for a sweep, chosen (or refused) before anything starts."""

import math
from pathlib import Path

import pytest

from harness.errors import BadInput
from harness.manifest import load_manifest
from harness.sweep.plan import link_for
from harness.sweep.topology import TcLink, shaped_link

REPO = Path(__file__).resolve().parents[2]
LINK = """link:
  rate: {{ bandwidth | tojson }}
  delay: 0ms              # one way, added to every message
  shaping: auto           # tc where the inventory can shape the link, otherwise emulated by the edge"""


def _manifest(tmp_path: Path, link: str):
    text = (REPO / "manifests" / "alexnet.yml").read_text()
    assert LINK in text
    path = tmp_path / "manifest.yml"
    path.write_text(text.replace(LINK, link))
    return load_manifest(path, ["cuts=[0]", "repeats=1"])


def test_one_link_gives_its_rate_in_bytes_and_its_delay(tmp_path):
    loaded = _manifest(tmp_path, "link: {rate: 4MB/s, delay: 20ms}")
    assert shaped_link(loaded, Path("inventory"), ["rpi1"]) == TcLink(rate=4_000_000, delay_ms=20.0)


def test_several_links_under_tc_are_refused(tmp_path):
    loaded = _manifest(tmp_path, "link: [{rate: 4MB/s}, {rate: 1MB/s}]")
    with pytest.raises(BadInput, match="tc, which shapes one link per sweep, but the runs ask for 2"):
        shaped_link(loaded, Path("inventory"), ["rpi1"])


def test_emulated_runs_leave_tc_alone(tmp_path):
    loaded = _manifest(tmp_path, "link: [{rate: 4MB/s}, {rate: 1MB/s, shaping: emulated}]")
    assert shaped_link(loaded, Path("inventory"), ["rpi1"]) == TcLink(rate=4_000_000, delay_ms=0.0)


def test_an_unlimited_link_under_tc_is_refused(tmp_path):
    loaded = _manifest(tmp_path, "link: {rate: unlimited}")
    with pytest.raises(BadInput) as error:
        shaped_link(loaded, Path("inventory"), ["rpi1"])
    assert str(error.value) == (
        f"manifest {loaded.rendered.path}: edge host rpi1 of inventory inventory shapes its link with tc, which "
        "needs a rate, but the runs ask for rate unlimited: give a rate, or set link.shaping: emulated, which "
        "leaves an unlimited link unpaced"
    )


@pytest.mark.parametrize(
    ("host_shaping", "link", "expected"),
    [
        ("tc", "link: {rate: 4MB/s, delay: 20ms}", ("tc", 4e6, 20_000_000, False)),
        ("emulated", "link: {rate: 4MB/s, delay: 20ms}", ("emulated", 4e6, 20_000_000, True)),
        ("emulated", "link: {rate: unlimited}", ("emulated", math.inf, 0, True)),
        ("tc", "link: {rate: 1MB/s, shaping: emulated}", ("emulated", 1e6, 0, True)),
    ],
)
def test_each_record_holds_the_link_as_shaped_whichever_way(tmp_path, host_shaping, link, expected):
    """Under tc every record once said rate 0.0 (the emulated pacing rate), so no query by rate found it."""
    (run,) = _manifest(tmp_path, link).runs
    settings = link_for(run, host_shaping)
    assert (settings.shaping, settings.rate, settings.delay_ns, settings.emulated is not None) == expected
