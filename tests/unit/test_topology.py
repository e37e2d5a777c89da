"""The runs of a sweep grouped by the link ``tc`` shapes for them (or refused) before anything starts."""

import math
from pathlib import Path

import pytest

from harness.errors import BadInput
from harness.manifest import load_manifest
from harness.sweep.plan import link_for
from harness.sweep.topology import LinkGroup, TcLink, link_groups, tc_groups

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


def _ids(groups: list[LinkGroup]) -> list[tuple[str, list[str], TcLink | None]]:
    return [(group.record, list(group.runs), group.tc) for group in groups]


def test_one_link_gives_its_rate_in_bytes_and_its_delay(tmp_path):
    loaded = _manifest(tmp_path, "link: {rate: 4MB/s, delay: 20ms}")
    (group,) = tc_groups(loaded, Path("inventory"), ["rpi1"])
    assert group.variables() == {
        "record": "link-4MBps-20ms.json",
        "runs": ["alexnet-module-4MBps-20ms-none"],
        "rate": 4_000_000,
        "delay_ms": 20.0,
        "links": [{"rate": "4MB/s", "delay": "20ms", "shaping": "auto"}],
    }


def test_each_link_tc_shapes_is_a_group_in_the_order_of_its_first_run(tmp_path):
    """Two spellings of one rate share a group (one qdisc), and its runs go together, in run order."""
    loaded = _manifest(tmp_path, "link: [{rate: 4MB/s}, {rate: 8MB/s}, {rate: 4000000, shaping: tc}]")
    assert _ids(link_groups(loaded.runs, tc=True)) == [
        (
            "link-4MBps.json",
            ["alexnet-module-4MBps-none", "alexnet-module-4000000-tc-none"],
            TcLink(rate=4_000_000, delay_ms=0.0),
        ),
        ("link-8MBps.json", ["alexnet-module-8MBps-none"], TcLink(rate=8_000_000, delay_ms=0.0)),
    ]
    assert [len(group.links) for group in link_groups(loaded.runs, tc=True)] == [2, 1]


def test_runs_the_edge_paces_go_last_with_no_tc_link(tmp_path):
    loaded = _manifest(tmp_path, "link: [{rate: 1MB/s, shaping: emulated}, {rate: 4MB/s}, {rate: 2MB/s}]")
    assert _ids(link_groups(loaded.runs, tc=True)) == [
        ("link-4MBps.json", ["alexnet-module-4MBps-none"], TcLink(rate=4_000_000, delay_ms=0.0)),
        ("link-2MBps.json", ["alexnet-module-2MBps-none"], TcLink(rate=2_000_000, delay_ms=0.0)),
        ("link.json", ["alexnet-module-1MBps-emulated-none"], None),
    ]
    assert link_groups(loaded.runs, tc=True)[-1].variables()["rate"] == 0


def test_without_tc_every_run_is_one_group(tmp_path):
    loaded = _manifest(tmp_path, "link: [{rate: 4MB/s}, {rate: 1MB/s, shaping: emulated}, {rate: unlimited}]")
    assert _ids(link_groups(loaded.runs, tc=False)) == [
        ("link.json", [run.id for run in loaded.runs], None),
    ]


def test_an_unlimited_link_the_edge_paces_is_no_concern_of_tc(tmp_path):
    loaded = _manifest(tmp_path, "link: [{rate: unlimited, shaping: emulated}, {rate: 4MB/s}]")
    groups = tc_groups(loaded, Path("inventory"), ["rpi1"])
    assert [(group.record, group.tc) for group in groups] == [
        ("link-4MBps.json", TcLink(rate=4_000_000, delay_ms=0.0)),
        ("link.json", None),
    ]


def test_an_unlimited_link_under_tc_is_refused(tmp_path):
    loaded = _manifest(tmp_path, "link: {rate: unlimited}")
    with pytest.raises(BadInput) as error:
        tc_groups(loaded, Path("inventory"), ["rpi1"])
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
