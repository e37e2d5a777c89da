"""Joules over windows of this host's monotonic clock, from whichever source it has.

A window is two marks. With a counter a mark holds its reading, and the window's joules are the
counter's rise. Otherwise a thread samples the source at ``rate_hz`` and keeps the running integral
of the host's energy as points in time, and a window's joules are that integral interpolated at its
two ends, so a window shorter than a sampling period or a step is still charged its share:

- a meter's watts are integrated by trapezoids between samples;
- a stepped counter's points are its steps, each placed halfway between the sample that saw it
  and the one before, so a window within a step is charged that step's mean power.

An end past the last point is charged at the last sample's (or step's) watts rather than waited for:
a worker asks as it replies, and must not hold the reply for a sample.
"""

import bisect
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from harness.energy.sources import I2C_DRIVERS, POWERCAP, Counter, Source, auto_order, open_source
from harness.errors import BadInput

HISTORY_S = 600
"""How far back the integral is kept: longer than any inference's window by far."""

STEP_WAIT_S = 2.0
"""How long a stepped counter may take to step twice as the meter opens, which gives its first
step's power (NVML steps at least ten times a second; a GPU draws tens of watts even idle)."""


@dataclass(frozen=True)
class Mark:
    at_ns: int
    reading: tuple[int, ...] | None = None


class EnergyMeter:
    def __init__(self, source: Source, rate_hz: float = 500.0):
        self.source = source
        self.counter = hasattr(source, "read")
        self._stepped = hasattr(source, "total_joules")
        self._period_s = 1.0 / rate_hz
        self._times: deque[int] = deque(maxlen=int(HISTORY_S * rate_hz))
        self._joules: deque[float] = deque(maxlen=int(HISTORY_S * rate_hz))
        self._last_watts = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if self.counter:
            return
        if self._stepped:
            self._open_steps()
        else:
            self._sample()
        self._thread = threading.Thread(target=self._run, name=f"energy-{source.name}", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def resolution_s(self) -> float:
        """The shortest stretch the source tells apart: a counter's update, a step (the mean of
        those seen), a sampling period."""
        if self.counter:
            return self.source.resolution_s
        if self._stepped:
            with self._lock:
                return (self._times[-1] - self._times[0]) / (len(self._times) - 1) / 1e9
        return self._period_s

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
        sample = self._sample_steps if self._stepped else self._sample
        while not self._stop.wait(self._period_s):
            sample()

    def _sample(self) -> None:
        watts = self.source.watts()
        now = time.monotonic_ns()
        with self._lock:
            if not self._times:
                self._add(now, 0.0, watts)
                return
            self._add(now, self._joules[-1] + (self._last_watts + watts) / 2 * (now - self._times[-1]) / 1e9, watts)

    def _open_steps(self) -> None:
        """Sample until the counter has stepped twice, so that every window has a power to go by."""
        self._total = self.source.total_joules()
        self._sampled_ns = time.monotonic_ns()
        deadline = self._sampled_ns + STEP_WAIT_S * 1e9
        while len(self._times) < 2:
            if time.monotonic_ns() > deadline:
                raise BadInput(f"energy source '{self.source.name}': its counter did not move in {STEP_WAIT_S:g} s")
            time.sleep(self._period_s)
            self._sample_steps()

    def _sample_steps(self) -> None:
        total = self.source.total_joules()
        now = time.monotonic_ns()
        seen_since, self._sampled_ns = self._sampled_ns, now
        if total == self._total:
            return
        self._total = total
        at = (seen_since + now) // 2
        with self._lock:
            if not self._times:
                self._base = total
                self._add(at, 0.0, 0.0)
                return
            joules = total - self._base
            self._add(at, joules, (joules - self._joules[-1]) / (at - self._times[-1]) * 1e9)

    def _add(self, at_ns: int, joules: float, watts: float) -> None:
        self._times.append(at_ns)
        self._joules.append(joules)
        self._last_watts = watts

    def _integral(self, at_ns: int) -> float:
        """The integral up to ``at_ns``: linear between the points around it, at the last watts
        after the last, nothing before the first."""
        times, joules = self._times, self._joules
        after = bisect.bisect_left(times, at_ns)
        if after == 0:
            return joules[0]
        if after == len(times):
            return joules[-1] + self._last_watts * (at_ns - times[-1]) / 1e9
        share = (at_ns - times[after - 1]) / (times[after] - times[after - 1])
        return joules[after - 1] + share * (joules[after] - joules[after - 1])


def open_meter(
    spec: str, device: str = "cpu", powercap: Path = POWERCAP, i2c: Path = I2C_DRIVERS, rate_hz: float = 500.0
) -> EnergyMeter | None:
    """This host's meter for ``spec`` on ``device`` (None for ``none``, or ``auto`` where nothing
    works); a named source that fails stops here with what was looked for."""
    for name in auto_order(device) if spec == "auto" else [spec]:
        try:
            source = open_source(name, device, powercap, i2c)
            return EnergyMeter(source, rate_hz) if source is not None else None
        except BadInput:
            if spec != "auto":
                raise
    return None
