"""The one link ``tc`` shapes for a sweep, chosen (or refused) before anything starts."""

from pathlib import Path

import pytest

from harness.errors import BadInput
from harness.manifest import load_manifest
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
