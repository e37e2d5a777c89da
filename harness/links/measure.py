"""Measuring the link matrix: every ordered pair of hosts probed by the worker on its sending host,
in rounds of disjoint pairs (``rounds``), all probes of a round at once.

The controller asks the sender's worker to probe the receiver's (echoes for the round trip, then
one bulk transfer for the throughput), so each figure is taken between the two hosts themselves,
whatever the controller's own links are. A pair that cannot be measured (the receiver does not
answer, refuses the bulk, or the sender itself is gone) becomes a gap with its reason and a
warning; the other pairs of the round are measured all the same. A host whose worker does not
answer a ping at the start is left out of the rounds, every pair of it a gap, so one dead host
costs one ping's wait rather than one per pair.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from harness.errors import ExperimentFailed
from harness.links.matrix import LinkMatrix
from harness.links.rounds import probe_rounds
from harness.wire.frames import Pace, Probe, encode
from harness.wire.keys import ClientKeys
from harness.worker.client import WorkerClient


@dataclass(frozen=True)
class ProbeSettings:
    """``echoes`` round trips and one ``bulk_bytes`` transfer per pair; ``timeout_s`` per step;
    ``ping_s``: how long the first ping of each worker may take."""

    echoes: int = 5
    bulk_bytes: int = 4 * 2**20
    timeout_s: float = 5.0
    ping_s: float = 3.0


@dataclass
class Measured:
    matrix: LinkMatrix
    rounds: int
    seconds: float
    warnings: list[str]


def measure_links(
    workers: dict[str, str],
    keys: ClientKeys | None = None,
    settings: ProbeSettings | None = None,
    progress: Callable[[str], None] = lambda _: None,
    paces: Mapping[tuple[str, str], Pace | None] | None = None,
) -> Measured:
    """The matrix between the hosts of ``workers`` (host name to its worker's endpoint, as the other
    workers reach it; each worker lists the others as peers); ``paces``: the emulated link of each
    ordered pair, which its sender holds the probe for."""
    settings = settings or ProbeSettings()
    names = list(workers)
    matrix = LinkMatrix.empty(names)
    warnings: list[str] = []
    started = time.monotonic()
    clients = {name: WorkerClient(endpoint, keys) for name, endpoint in workers.items()}
    try:
        answering = [name for name in names if _answers(name, clients[name], names, settings, matrix, warnings)]
        rounds = probe_rounds(answering)
        for number, pairs in enumerate(rounds, start=1):
            progress(f"round {number} of {len(rounds)}: " + ", ".join(f"{a} -> {b}" for a, b in pairs))
            _measure_round(pairs, workers, clients, settings, matrix, warnings, paces or {})
    finally:
        for client in clients.values():
            client.close()
    return Measured(matrix, len(rounds), time.monotonic() - started, warnings)


def _answers(name: str, client: WorkerClient, names, settings: ProbeSettings, matrix, warnings) -> bool:
    """Whether ``name``'s worker answers a ping; if not, every pair of it becomes a gap."""
    try:
        client.ping(settings.ping_s)
        return True
    except ExperimentFailed as error:
        reason = f"the worker of {name} did not answer a ping: {error}"
    for other in names:
        if other != name:
            matrix.mark_gap(name, other, reason)
            matrix.mark_gap(other, name, reason)
    warnings.append(f"{name}: every pair a gap ({reason})")
    return False


def _measure_round(
    pairs, workers, clients, settings: ProbeSettings, matrix: LinkMatrix, warnings: list[str], paces: Mapping
) -> None:
    waiting = []
    for src, dst in pairs:
        client = clients[src]
        request = Probe(
            id=client.next_id(),
            target=workers[dst],
            echoes=settings.echoes,
            bulk_bytes=settings.bulk_bytes,
            timeout_ms=round(settings.timeout_s * 1000),
            pace=paces.get((src, dst)),
        )
        waiting.append((src, dst, request.id, client.send(encode(request))))
    step_s = settings.timeout_s * (settings.echoes + 2)
    for src, dst, request_id, sent_ns in waiting:
        try:
            probed = clients[src].wait(request_id, sent_ns, step_s).reply
        except ExperimentFailed as error:
            reason = f"the worker of {src} did not probe: {error}"
        else:
            if not probed.gap:
                matrix.record(src, dst, probed.rate, min(probed.rtt_s), "probe")
                continue
            reason = probed.gap
        matrix.mark_gap(src, dst, reason)
        warnings.append(f"{src} -> {dst}: a gap ({reason})")
