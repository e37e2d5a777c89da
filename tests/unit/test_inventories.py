"""The inventories shipped as templates: the groups a lab copies, and no address that reaches anyone."""

import ipaddress
import re
from pathlib import Path

from harness.ansible.inventory import inventory_groups

SAMPLE = Path(__file__).resolve().parents[2] / "inventory" / "sample-lab"
DOCUMENTATION = [ipaddress.ip_network(net) for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
# Anything that looks like a dotted quad, so that an address in a comment or a URL is caught too.
QUAD = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")


def test_sample_lab_has_device_groups_with_hosts():
    groups = inventory_groups(SAMPLE)
    for group in ("rpi", "jetson", "gpu"):
        assert groups.get(group), f"group {group} has no hosts"
    assert set(groups["edge"]) == set(groups["rpi"]) | set(groups["jetson"])
    assert groups["cloud"] == groups["gpu"] and len(groups["cloud"]) == 1


def test_sample_lab_uses_documentation_addresses_only():
    found = {
        f"{path.relative_to(SAMPLE)}: {text}"
        for path in sorted(SAMPLE.rglob("*"))
        if path.is_file()
        for text in QUAD.findall(path.read_text())
        if not any(ipaddress.ip_address(text) in net for net in DOCUMENTATION)
    }
    assert found == set(), "addresses outside RFC 5737's documentation ranges"
    assert QUAD.search((SAMPLE / "hosts.yml").read_text()), "the sample names no address at all"
