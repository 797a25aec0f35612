"""Machine power profiles for the Shelly meter simulator (shelly_sim.py).

A profile is a small class whose :meth:`Profile.segments` turns a seeded
``random.Random`` into an endless schedule of :class:`Segment` s in simulated
time: "hold about this many watts for that many seconds".  The meter samples
the current segment once per simulated second (level + drift + noise, clamped
to the segment's range), integrates energy from those samples and reports
them by the firmware's on-change rule.  The schedule depends only on the
random stream, never on the wall clock, so a seed replays the same machine.

``schedule`` is ``"busy"`` (a demo: the first session starts within 5-20 s,
short sessions, gaps of under two minutes) or ``"quiet"`` (a plausible
workshop day: long sessions, gaps of many minutes).  The compressor's pressure
switch cycle is physics, not usage: both schedules run it the same way.
"""

import math
from collections.abc import Iterator
from random import Random
from typing import NamedTuple

SCHEDULES = ("busy", "quiet")


class Segment(NamedTuple):
    """A stretch of simulated time at one power level.

    The power sampled at ``s`` seconds into the segment is
    ``watts + slope * s + gauss(0, jitter)``, clamped to ``[lo, hi]``.  A
    segment with neither jitter nor slope is constant: the meter skips its
    samples (nothing can change), which keeps large idle fleets cheap.
    """

    duration: float  # s, > 0
    watts: float
    phase: str  # what the machine does: "off", "standby", "cut", "heat", ...
    jitter: float = 0.0  # W, standard deviation of the per-sample noise
    slope: float = 0.0  # W/s
    lo: float = 0.0
    hi: float = math.inf


def _u(rng: Random, low: float, high: float, digits: int = 1) -> float:
    return round(rng.uniform(low, high), digits)


class Profile:
    """Base class: ``segments(rng)`` is the machine's endless schedule."""

    name = ""
    #: (low, high) s before the first session starts, per schedule
    first_start = {"busy": (5.0, 20.0), "quiet": (60.0, 900.0)}
    #: (low, high) s of "off" between two sessions, per schedule
    gap = {"busy": (20.0, 90.0), "quiet": (600.0, 3600.0)}

    def __init__(self, schedule: str = "busy"):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, not {schedule!r}")
        self.schedule = schedule

    def segments(self, rng: Random) -> Iterator[Segment]:
        raise NotImplementedError

    def _first(self, rng):
        return _u(rng, *self.first_start[self.schedule])

    def _gap(self, rng):
        return _u(rng, *self.gap[self.schedule])

    def __repr__(self):
        return f"{type(self).__name__}({self.schedule!r})"


class Laser(Profile):
    """CO2 laser cutter: electronics idle at 0-2 W when off; a session is a
    ~30 W standby (chiller, fans, controller) with cutting bursts of
    600-1,200 W lasting 10 s-3 min and standby pauses of 5 s-2 min between.
    """

    name = "laser"
    session = {"busy": (120.0, 360.0), "quiet": (600.0, 3600.0)}

    def segments(self, rng):
        idle = _u(rng, 0.3, 1.8)
        yield Segment(self._first(rng), idle, "off")
        while True:
            length = rng.uniform(*self.session[self.schedule])
            standby = _u(rng, 26.0, 34.0)
            warm_up = _u(rng, 10.0, 60.0)
            yield Segment(warm_up, standby, "standby", jitter=0.4, lo=20.0, hi=40.0)
            elapsed = warm_up
            while elapsed < length:
                burst = _u(rng, 10.0, 180.0)
                watts = _u(rng, 600.0, 1200.0)
                yield Segment(burst, watts, "cut", 0.02 * watts, lo=600.0, hi=1200.0)
                pause = _u(rng, 5.0, 120.0)
                yield Segment(pause, standby, "standby", jitter=0.4, lo=20.0, hi=40.0)
                elapsed += burst + pause
            yield Segment(self._gap(rng), idle, "off")


class TableSaw(Profile):
    """Table saw: 0 W when off; a session is a few cuts of 1.5-2 kW lasting
    3-15 s (motor spin-up, then the blade under load), with 10-60 s of 0 W
    between cuts (the motor stops).
    """

    name = "saw"
    cuts = {"busy": (3, 8), "quiet": (5, 25)}
    gap = {"busy": (20.0, 60.0), "quiet": (300.0, 2700.0)}
    #: W: spin-up level, cutting level, the clamp (lo, hi), the noise of each
    spin_up_w = (1500.0, 1650.0)
    cut_w = (1650.0, 1980.0)
    clamp_w = (1500.0, 2000.0)
    jitter_w = (10.0, 25.0)

    def segments(self, rng):
        lo, hi = self.clamp_w
        spin_jitter, cut_jitter = self.jitter_w
        yield Segment(self._first(rng), 0.0, "off")
        while True:
            count = rng.randint(*self.cuts[self.schedule])
            for number in range(count):
                total = _u(rng, 3.0, 15.0)
                spin_up = min(_u(rng, 1.0, 2.5), round(total / 2, 1))
                watts = _u(rng, *self.spin_up_w)
                yield Segment(spin_up, watts, "spin_up", spin_jitter, lo=lo, hi=hi)
                yield Segment(
                    round(total - spin_up, 1),
                    _u(rng, *self.cut_w),
                    "cut",
                    cut_jitter,
                    lo=lo,
                    hi=hi,
                )
                if number < count - 1:
                    yield Segment(_u(rng, 10.0, 60.0), 0.0, "pause")
            yield Segment(self._gap(rng), 0.0, "off")


class FormatSaw(TableSaw):
    """Three-phase panel saw (400 V, a 4 kW motor; metered by a Pro 3EM):
    the table saw's rhythm at 3.0-4.5 kW."""

    name = "saw3"
    spin_up_w = (3000.0, 3400.0)
    cut_w = (3400.0, 4400.0)
    clamp_w = (3000.0, 4500.0)
    jitter_w = (20.0, 50.0)


class Printer(Profile):
    """FDM 3D printer: a powered-on board idles at 3.5-7 W between prints; a
    print heats bed and nozzle at ~200 W for 2-5 min, then holds them at
    ~80 W (60-100 W as the bed heater regulates) for the print's length.
    """

    name = "printer"
    print_s = {"busy": (300.0, 1200.0), "quiet": (3600.0, 6 * 3600.0)}
    gap = {"busy": (30.0, 120.0), "quiet": (900.0, 7200.0)}

    def segments(self, rng):
        idle = _u(rng, 3.5, 7.0)
        yield Segment(self._first(rng), idle, "idle")
        while True:
            heat = _u(rng, 120.0, 300.0)
            yield Segment(heat, _u(rng, 185.0, 215.0), "heat", 2.0, lo=170.0, hi=230.0)
            length = rng.uniform(*self.print_s[self.schedule])
            elapsed = 0.0
            while elapsed < length:
                hold = _u(rng, 20.0, 120.0)
                watts = _u(rng, 65.0, 95.0)
                yield Segment(hold, watts, "print", 1.2, lo=60.0, hi=100.0)
                elapsed += hold
            yield Segment(self._gap(rng), idle, "idle")


class Compressor(Profile):
    """Air compressor on its pressure switch: runs at 1.1-1.5 kW for 30-90 s
    (the load rises a few per cent as the tank fills), then is off for
    2-8 min.  Every run is a cycle; the schedule only sets the first start.
    """

    name = "compressor"

    def segments(self, rng):
        yield Segment(self._first(rng), 0.0, "off")
        while True:
            run = _u(rng, 30.0, 90.0)
            start = _u(rng, 1100.0, 1400.0)
            slope = rng.uniform(0.03, 0.07) * start / run
            yield Segment(run, start, "run", 8.0, slope, lo=1100.0, hi=1500.0)
            yield Segment(_u(rng, 120.0, 480.0), 0.0, "off")


PROFILES = {cls.name: cls for cls in (Laser, TableSaw, Printer, Compressor, FormatSaw)}
# "mixed": meter i plays MIXED[i % 4] (single-phase machines on PM Minis)
MIXED = ("laser", "saw", "printer", "compressor")


def make_profile(name: str, schedule: str = "busy") -> Profile:
    """A profile instance by name (``laser``, ``saw``, ``printer``, ``compressor``,
    ``saw3``)."""
    try:
        cls = PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r}: choose from {', '.join(PROFILES)}"
        ) from None
    return cls(schedule)
