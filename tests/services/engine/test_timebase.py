"""The one conversion between device time and Odoo's naive UTC datetimes."""

from datetime import datetime

from ....services.engine.timebase import from_utc, to_utc


def test_device_time_to_datetime():
    assert to_utc(0) == datetime(1970, 1, 1)
    assert to_utc(1783004880.01) == datetime(2026, 7, 2, 15, 8, 0, 10000)


def test_round_trip_keeps_the_microseconds():
    for ts in (0.0, 1_780_000_000.25, 1783004880.01):
        assert abs(from_utc(to_utc(ts)) - ts) < 1e-6
