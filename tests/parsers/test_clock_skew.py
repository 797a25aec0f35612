"""A meter clock far off the receive time is not believed (the runner's limits):
more than a few minutes ahead, or further behind than any backlog can be."""

import json

from ...parsers import TS_DEVICE, TS_NOT_BELIEVED, ShellyGen2Parser
from ...services.engine.fleet import LIVE_LIMITS, MAX_CLOCK_AHEAD_S

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


LIVE = LIVE_LIMITS  # what the runner's engine parses with


def test_a_clock_ahead_is_not_believed_and_does_not_poison_staleness():
    """One frame dated 22 h ahead is read at its receive time, counted as not
    believed (the engine counts it), and the meter's next real frames are
    read: they are not stale behind it."""
    parser = ShellyGen2Parser(PREFIX, limits=LIVE)
    topic = f"{PREFIX}/events/rpc"
    ahead = parser.parse(topic, frame(NOW + 22 * 3600, 2222.0), NOW)
    assert (ahead.ts, ahead.ts_source, ahead.power_w) == (NOW, TS_NOT_BELIEVED, 2222.0)
    assert parser.clock_offset is None  # nothing learned from it
    normal = parser.parse(topic, frame(NOW + 1.5, 600.0), NOW + 1)
    assert (normal.ts, normal.ts_source, normal.power_w) == (
        NOW + 1.5,
        TS_DEVICE,
        600.0,
    )
    assert parser.clock_offset == 0.5
    wild = parser.parse(topic, frame(NOW + 10 * 86400, 7.0), NOW + 2)
    assert (wild.ts, wild.ts_source) == (NOW + 2, TS_NOT_BELIEVED)
    assert parser.clock_offset == 0.5
    after = parser.parse(topic, frame(NOW + 3.5, 610.0), NOW + 3)
    assert (after.ts, after.power_w) == (NOW + 3.5, 610.0)


def test_a_few_minutes_ahead_is_a_skewed_clock_and_believed():
    parser = ShellyGen2Parser(PREFIX, limits=LIVE)
    topic = f"{PREFIX}/events/rpc"
    ahead = parser.parse(topic, frame(NOW + MAX_CLOCK_AHEAD_S, 5.0), NOW)
    assert (ahead.ts, ahead.ts_source) == (NOW + MAX_CLOCK_AHEAD_S, TS_DEVICE)
    too_far = parser.parse(topic, frame(NOW + MAX_CLOCK_AHEAD_S + 2, 5.0), NOW + 1)
    assert too_far.ts_source == TS_NOT_BELIEVED


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
    assert (ancient.ts, ancient.ts_source) == (NOW + 1, TS_NOT_BELIEVED)
    edge = ShellyGen2Parser(PREFIX, limits=LIVE)
    inside = edge.parse(topic, frame(NOW - 31 * 86400, 1.0), NOW)
    assert inside.ts_source == TS_DEVICE
    outside = edge.parse(topic, frame(NOW - 31 * 86400 - 1, 1.0), NOW + 1)
    assert (outside.ts, outside.ts_source) == (NOW + 1, TS_NOT_BELIEVED)
