"""An emulated link for runs without root: rates and delays applied in the edge driver's clock.

Real shaping needs ``tc`` (root). Without it the edge holds each request until its bytes would
have crossed a link of ``rate`` bytes per second (plus ``delay``), then sends; and releases each
reply no earlier than its bytes would have arrived, counting the real transport time (loopback,
microseconds) towards that, so the transfer time seen in records is bytes/rate + delay per
direction rather than that plus the loopback's own cost. Records say ``shaping: emulated``.

A rate is always positive: a link that nobody paces is written ``unlimited`` and held as an
infinite rate, never as 0, which a reader of the records could take for a link that carries nothing.
"""

import math
import re
import time
from dataclasses import dataclass

from harness.errors import BadInput

_RATE_UNITS = {
    "b/s": 1,
    "kb/s": 1e3,
    "mb/s": 1e6,
    "gb/s": 1e9,
    "kib/s": 1024,
    "mib/s": 1024**2,
    "gib/s": 1024**3,
    "bit": 1 / 8,
    "kbit": 1e3 / 8,
    "mbit": 1e6 / 8,
    "gbit": 1e9 / 8,
    "kibit": 1024 / 8,
    "mibit": 1024**2 / 8,
    "gibit": 1024**3 / 8,
}
_DELAY_UNITS = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}
UNLIMITED = "unlimited"
"""How a rate that nothing limits is written, in manifests, options and labels."""
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z/]*)\s*$", re.IGNORECASE)
SPIN_NS = 1_000_000
"""The last stretch of a hold is spent spinning: sleeps overshoot by tens of microseconds."""


def parse_rate(text: str | float) -> float:
    """Bytes per second from ``4MB/s``, ``32mbit``, ``500kB/s`` or a bare number of bytes per second;
    ``unlimited`` is infinity."""
    if str(text).strip().lower() == UNLIMITED:
        return math.inf
    rate = _parse(text, _RATE_UNITS, "b/s", "rate", "4MB/s or 32mbit")
    if rate <= 0:
        raise BadInput(f"rate '{text}': expected a rate above 0, like 4MB/s; an unshaped link is '{UNLIMITED}'")
    return rate


def rate_label(rate: float) -> str:
    """A rate in bytes per second as a person reads it: ``4 MB/s``, or ``unlimited``."""
    return UNLIMITED if math.isinf(rate) else f"{rate / 1e6:g} MB/s"


def parse_delay(text: str | float) -> int:
    """Nanoseconds from ``20ms``, ``150us``, ``0`` or a bare number of seconds."""
    return int(_parse(text, _DELAY_UNITS, "s", "delay", "20ms"))


def _parse(text, units: dict[str, float], default: str, what: str, example: str) -> float:
    match = _QUANTITY.match(str(text))
    unit = (match.group(2).lower() or default) if match else ""
    if not match or unit not in units:
        raise BadInput(f"{what} '{text}': expected a number with a unit ({', '.join(units)}), like {example}")
    return float(match.group(1)) * units[unit]


@dataclass(frozen=True)
class EmulatedLink:
    """A link of ``rate`` bytes per second (infinite: unlimited) with ``delay_ns`` one way."""

    rate: float
    delay_ns: int = 0

    def __post_init__(self):
        if not self.rate > 0 or self.delay_ns < 0:
            raise BadInput(f"link rate {self.rate} B/s, delay {self.delay_ns} ns: expected a rate > 0 and a delay >= 0")

    def crossing_ns(self, nbytes: int) -> int:
        """How long ``nbytes`` take one way."""
        return (0 if math.isinf(self.rate) else round(1e9 * nbytes / self.rate)) + self.delay_ns

    def hold_outgoing(self, nbytes: int) -> None:
        """Return when a message of ``nbytes`` handed over now would have left the link."""
        hold_until(time.monotonic_ns() + self.crossing_ns(nbytes))

    def hold_incoming(self, nbytes: int, already_ns: int) -> None:
        """Return when ``nbytes`` would have arrived, ``already_ns`` of real transport counted in."""
        hold_until(time.monotonic_ns() + self.crossing_ns(nbytes) - already_ns)


def hold_until(deadline_ns: int) -> None:
    """Sleep, then spin for the last millisecond, until the monotonic clock reaches ``deadline_ns``."""
    remaining = deadline_ns - time.monotonic_ns()
    if remaining > SPIN_NS:
        time.sleep((remaining - SPIN_NS) / 1e9)
    while time.monotonic_ns() < deadline_ns:
        pass
