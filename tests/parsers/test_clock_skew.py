"""A meter clock that is far off the receive time is not believed (live limits)."""

import json

from ...parsers import TS_DEVICE, TS_RECEIVED, Limits, ShellyGen2Parser

PREFIX = "shellypmminig3-aabbccddeeff"
NOW = 1_790_000_000.0


def frame(ts, watts):
    return json.dumps(
        {
            "src": PREFIX,
            "method": "NotifyStatus",
            "params": {"ts": ts, "pm1:0": {"apower": watts}},
        }
    )


LIVE = Limits(max_clock_ahead_s=86400.0, max_clock_behind_s=31 * 86400.0)


def test_far_clock_falls_back_to_receive_time_and_does_not_poison_staleness():
    parser = ShellyGen2Parser(PREFIX, limits=LIVE)
    topic = f"{PREFIX}/events/rpc"
    ahead = parser.parse(topic, frame(NOW + 30 * 86400, 5.0), NOW)
    assert (ahead.ts, ahead.ts_source, ahead.power_w) == (NOW, TS_RECEIVED, 5.0)
    assert parser.clock_offset is None  # nothing learned from a clock a month off
    normal = parser.parse(topic, frame(NOW + 3600.5, 600.0), NOW + 1)
    assert (normal.ts, normal.ts_source, normal.power_w) == (
        NOW + 3600.5,
        TS_DEVICE,
        600.0,
    )
    assert parser.clock_offset == 3599.5  # an hour off is a skewed clock, believed


def test_without_a_limit_any_synced_clock_counts():
    parser = ShellyGen2Parser(PREFIX)
    reading = parser.parse(f"{PREFIX}/events/rpc", frame(NOW + 30 * 86400, 5.0), NOW)
    assert (reading.ts, reading.ts_source) == (NOW + 30 * 86400, TS_DEVICE)


def test_a_late_backlog_keeps_its_own_time_a_clock_years_behind_does_not():
    """A broker delivers a persistent session's backlog days late: those frames
    are dated by the meter, not bunched at the receive time.  A clock further
    behind than any backlog can be is broken and not believed."""
    parser = ShellyGen2Parser(PREFIX, limits=LIVE)
    topic = f"{PREFIX}/events/rpc"
    late = parser.parse(topic, frame(NOW - 3 * 86400, 700.0), NOW)
    assert (late.ts, late.ts_source, late.power_w) == (
        NOW - 3 * 86400,
        TS_DEVICE,
        700.0,
    )
    ancient = parser.parse(topic, frame(1e9 + 5, 5.0), NOW + 1)
    assert (ancient.ts, ancient.ts_source) == (NOW + 1, TS_RECEIVED)
    edge = ShellyGen2Parser(PREFIX, limits=LIVE)
    inside = edge.parse(topic, frame(NOW - 31 * 86400, 1.0), NOW)
    assert inside.ts_source == TS_DEVICE
    outside = edge.parse(topic, frame(NOW - 31 * 86400 - 1, 1.0), NOW + 1)
    assert (outside.ts, outside.ts_source) == (NOW + 1, TS_RECEIVED)
