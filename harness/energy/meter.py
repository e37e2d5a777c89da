"""Joules over windows of this host's monotonic clock, from whichever source it has.

A window is two marks. With a counter a mark holds its reading, and the window's joules are the
counter's rise. With a meter a thread samples the watts at ``rate_hz`` and keeps the running
integral (trapezoids between samples); a window's joules are that integral, interpolated at its two
ends, so a window shorter than a sampling period is still charged its share. An end past the last
sample is charged at the last sample's watts rather than waited for: a worker asks as it replies,
and must not hold the reply for a sample.
"""

import bisect
import threading
import time
from collections import deque
from dataclasses import dataclass

from harness.energy.sources import Counter, Source

HISTORY_S = 600
"""How far back a meter's integral is kept: longer than any inference's window by far."""


@dataclass(frozen=True)
class Mark:
    at_ns: int
    reading: tuple[int, ...] | None = None


class EnergyMeter:
    def __init__(self, source: Source, rate_hz: float = 500.0):
        self.source = source
        self.counter = hasattr(source, "read")
        self._period_s = 1.0 / rate_hz
        self._times: deque[int] = deque(maxlen=int(HISTORY_S * rate_hz))
        self._joules: deque[float] = deque(maxlen=int(HISTORY_S * rate_hz))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if not self.counter:
            self._sample()
            self._thread = threading.Thread(target=self._run, name=f"energy-{source.name}", daemon=True)
            self._thread.start()

    @property
    def name(self) -> str:
        return self.source.name

    def mark(self) -> Mark:
        """Now, and a counter's reading: timed as the reading returns, which is when its value was
        taken (a sysfs read takes microseconds; a reading that waits is timed at its end)."""
        if self.counter:
            source: Counter = self.source
            reading = source.read()
            return Mark(time.monotonic_ns(), reading)
        return Mark(time.monotonic_ns())

    def joules(self, start: Mark, end: Mark) -> float:
        if self.counter:
            return self.source.joules(start.reading, end.reading)
        with self._lock:
            return self._integral(end.at_ns) - self._integral(start.at_ns)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            self._sample()

    def _sample(self) -> None:
        watts = self.source.watts()
        now = time.monotonic_ns()
        with self._lock:
            if self._times:
                self._joules.append(self._joules[-1] + (self._last_watts + watts) / 2 * (now - self._times[-1]) / 1e9)
            else:
                self._joules.append(0.0)
            self._times.append(now)
            self._last_watts = watts

    def _integral(self, at_ns: int) -> float:
        """The integral up to ``at_ns``: linear between the samples around it, at the last sample's
        watts after it, nothing before the first."""
        times, joules = self._times, self._joules
        after = bisect.bisect_left(times, at_ns)
        if after == 0:
            return joules[0]
        if after == len(times):
            return joules[-1] + self._last_watts * (at_ns - times[-1]) / 1e9
        share = (at_ns - times[after - 1]) / (times[after] - times[after - 1])
        return joules[after - 1] + share * (joules[after] - joules[after - 1])
