"""How the worker commands show results: a worker's state, the edge run's medians per cut, and a
pipeline's per worker."""

import statistics
from collections import defaultdict

import msgspec
from rich.table import Table

from harness.console import make_table
from harness.results import InferenceRecord
from harness.results.records import HopRecord
from harness.wire.frames import State
from harness.wire.link import rate_label


def state_record(endpoint: str, state: State) -> dict:
    record = {key: value for key, value in msgspec.structs.asdict(state).items() if key not in ("v", "id")}
    return {"endpoint": endpoint, **record}


def state_lines(endpoint: str, state: State) -> list[str]:
    uptime = state.uptime_ns / 1e9
    lines = [
        f"worker at {endpoint}: up {uptime:.1f} s, pid {state.pid}, harness {state.version}, device {state.device}",
        f"requests {state.requests} ({state.errors} refused or failed), clients {state.clients}",
        f"loaded: {', '.join(state.loaded) if state.loaded else 'nothing yet'}",
    ]
    if state.supervisor:
        lines.append(f"supervised by pid {state.supervisor}, restarted {state.restarts} times")
    return lines


def _ms(values: list[int]) -> str:
    return f"{statistics.median(values) / 1e6:,.2f}"


def edge_table(records: list[InferenceRecord]) -> Table:
    """Medians per cut, in milliseconds, with the bytes each cut sends."""
    by_cut: dict[int, list[InferenceRecord]] = defaultdict(list)
    for record in records:
        by_cut[record.cut].append(record)
    first = records[0]
    link = "unshaped" if first.shaping == "none" else f"{first.shaping} {rate_label(first.rate)}"
    table = make_table(
        f"{first.model}: {len(records)} inferences, {link}, compression {first.compression}",
        [
            "cut>",
            "after",
            "n>",
            "edge ms>",
            "encode ms>",
            "transfer ms>",
            "cloud ms>",
            "decode ms>",
            "total ms>",
            "bytes>",
            "on the wire>",
        ],
        caption="medians per cut; transfer = end-to-end minus both hosts' own work",
    )
    for cut, group in sorted(by_cut.items()):
        table.add_row(
            str(cut),
            group[0].layer,
            str(len(group)),
            _ms([r.edge_ns for r in group]),
            _ms([r.encode_ns for r in group]),
            _ms([r.transfer_ns for r in group]),
            _ms([r.cloud_decode_ns + r.cloud_ns + r.cloud_encode_ns for r in group]),
            _ms([r.decode_ns for r in group]),
            _ms([r.e2e_ns for r in group]),
            f"{group[0].bytes_raw:,}",
            f"{statistics.median(r.bytes_wire for r in group):,.0f}",
        )
    return table


def hop_table(hops: list[HopRecord]) -> Table:
    """Medians per worker of a pipeline, in milliseconds, with the bytes each received."""
    by_hop: dict[int, list[HopRecord]] = defaultdict(list)
    for hop in hops:
        by_hop[hop.hop].append(hop)
    table = make_table(
        "per worker",
        ["hop>", "worker", "cuts", "decode ms>", "compute ms>", "encode ms>", "busy ms>", "received bytes>"],
        caption="medians per worker, each timed on its own host",
    )
    for number, group in sorted(by_hop.items()):
        first = group[0]
        end = "output" if first.end_cut < 0 else str(first.end_cut)
        table.add_row(
            str(number),
            first.endpoint,
            f"{first.start_cut} to {end}",
            _ms([hop.decode_ns for hop in group]),
            _ms([hop.compute_ns for hop in group]),
            _ms([hop.encode_ns for hop in group]),
            _ms([hop.busy_ns for hop in group]),
            f"{first.bytes_raw:,}",
        )
    return table
