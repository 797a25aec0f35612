"""ShellyGen2Parser state across frames: delta merging, energy freshness, stale
frames, device clock, snapshots.

Single frames (own fixtures per message kind, topics, replies, rejections and
the bridge helpers) are in test_shelly_parser.py.
"""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ...parsers import (
    TS_DEVICE,
    TS_OFFSET,
    TS_RECEIVED,
    InvalidValue,
    NotAReading,
    ShellyGen2Parser,
)

DEV = "shellypmminig3-84fce63957f4"
EV = f"{DEV}/events/rpc"
R = 1_752_840_154.0  # receive time


def notify(comp=None, ts=1752840160.0, method="NotifyStatus", key="pm1:0", **extra):
    params = {"ts": ts} if ts is not None else {}
    if comp is not None:
        params[key] = comp
    params.update(extra)
    frame = {"src": DEV, "dst": f"{DEV}/events", "method": method, "params": params}
    return json.dumps(frame).encode()


def vals(reading, names):
    return tuple(getattr(reading, name) for name in names.split())


def code_of(parser, topic, payload, at=R):
    with pytest.raises(NotAReading) as info:
        parser.parse(topic, payload, at)
    return info.value.code


@pytest.fixture
def parser():
    return ShellyGen2Parser(DEV)


# -- delta merging ------------------------------------------------------------


def test_voltage_only_delta_keeps_power(parser):
    parser.parse(EV, notify({"apower": 100.0, "voltage": 230.0}), R)
    reading = parser.parse(EV, notify({"voltage": 231.5}, ts=1752840170.0), R + 10)
    assert vals(reading, "power_w voltage_v ts") == (100.0, 231.5, 1752840170.0)


def test_counts_only_delta_is_a_sign_of_life_at_the_new_time(parser):
    parser.parse(EV, notify({"apower": 100.0}), R)
    reading = parser.parse(EV, notify({"counts": {"on_time": 5}}, ts=1752840999.5), R)
    assert vals(reading, "power_w ts") == (100.0, 1752840999.5)


def test_null_removes_a_field(parser):
    parser.parse(
        EV, notify({"apower": 1.0, "voltage": 230.0, "aenergy": {"total": 5}}), R
    )
    reading = parser.parse(EV, notify({"voltage": None}), R)
    assert vals(reading, "power_w voltage_v") == (1.0, None)
    assert parser.snapshot()["status"] == {"apower": 1.0, "aenergy": {"total": 5.0}}
    assert parser.parse(EV, notify({"aenergy": None}), R).energy_wh is None
    assert parser.snapshot()["status"] == {"apower": 1.0}
    assert code_of(parser, EV, notify({"apower": None})) == "no_power"


# -- energy: held in the status, sent only when the frame carries a fresh total --


def test_energy_only_with_a_fresh_total(parser):
    first = parser.parse(EV, notify({"apower": 1.0, "aenergy": {"total": 5.5}}), R)
    assert vals(first, "power_w energy_wh") == (1.0, 5.5)
    # apower only, voltage only, by_minute only: the counter is no new sample.
    for comp in ({"apower": 2.0}, {"voltage": 230.0}, {"aenergy": {"by_minute": [1]}}):
        reading = parser.parse(EV, notify(comp), R)
        assert vals(reading, "power_w energy_wh") == (comp.get("apower", 2.0), None)
    assert parser.snapshot()["status"]["aenergy"] == {"total": 5.5}  # still held
    again = parser.parse(EV, notify({"aenergy": {"total": 5.5}}), R)
    assert vals(again, "power_w energy_wh") == (2.0, 5.5)  # same value, fresh
    newer = parser.parse(EV, notify({"aenergy": {"by_minute": [], "total": 6}}), R)
    assert vals(newer, "power_w energy_wh") == (2.0, 6.0)
    assert parser.parse(EV, notify({"aenergy": {"total": None}}), R).energy_wh is None


def test_full_frames_carry_the_energy_they_have(parser):
    full = notify({"apower": 3.0, "aenergy": {"total": 7.0}}, method="NotifyFullStatus")
    assert parser.parse(EV, full, R).energy_wh == 7.0
    # A full status without aenergy replaces the status: no counter at all.
    bare = notify({"apower": 3.0}, method="NotifyFullStatus")
    assert parser.parse(EV, bare, R).energy_wh is None
    assert "aenergy" not in parser.snapshot()["status"]
    status = parser.parse(
        f"{DEV}/status/pm1:0", b'{"apower":3,"aenergy":{"total":8}}', R
    )
    assert status.energy_wh == 8.0
    reply = b'{"id":1,"src":"%s","result":{"id":0,"apower":3.0}}' % DEV.encode()
    assert parser.parse("owm/rpc", reply, R).energy_wh is None
    reply = b'{"id":2,"src":"%s","result":{"id":0,"apower":3,"aenergy":{"total":9}}}'
    assert parser.parse("owm/rpc", reply % DEV.encode(), R).energy_wh == 9.0
    assert parser.parse(EV, notify({"apower": 4.0}), R).energy_wh is None


def test_energy_only_delta_before_any_power_is_a_reading_without_power(parser):
    reading = parser.parse(EV, notify({"aenergy": {"total": 5.5}}), R)
    assert vals(reading, "power_w energy_wh") == (None, 5.5)
    # It is held, but the first power delta does not carry it as a new sample.
    assert vals(parser.parse(EV, notify({"apower": 2}), R), "energy_wh") == (None,)
    assert parser.snapshot()["status"] == {"apower": 2.0, "aenergy": {"total": 5.5}}


def test_full_status_replaces_instead_of_merging(parser):
    parser.parse(EV, notify({"apower": 1.0, "voltage": 230.0}), R)
    reading = parser.parse(EV, notify({"apower": 2.0}, method="NotifyFullStatus"), R)
    assert vals(reading, "power_w voltage_v") == (2.0, None)
    status = b'{"id":0,"current":1.5}'
    assert code_of(parser, f"{DEV}/status/pm1:0", status) == "no_power"
    assert parser.snapshot()["status"] == {"current": 1.5}


@pytest.mark.parametrize(
    "payload",
    [
        notify(None, sys={"available_updates": {}}),
        notify(None, cloud={"connected": False}),
        notify(None, ts=1.61, mqtt={"connected": True}),
        notify({"apower": 5.0}, key="switch:0"),
        notify({"apower": 5.0}, key="pm1:1"),
    ],
)
def test_frames_without_our_component(parser, payload):
    parser.parse(EV, notify({"apower": 9.0}), R)
    assert code_of(parser, EV, payload) == "no_component"
    assert parser.snapshot()["status"] == {"apower": 9.0}


def test_status_topics_of_other_components_and_whole_device(parser):
    assert code_of(parser, f"{DEV}/status/sys", b'{"uptime":1}') == "other_component"
    assert code_of(parser, f"{DEV}/status", b'{"sys":{}}') == "no_component"
    whole = parser.parse(f"{DEV}/status", b'{"sys":{},"pm1:0":{"apower":3}}', R)
    assert vals(whole, "power_w source") == (3.0, "status")


# -- stale frames: device time older than the newest merged frame ----------------

T = 1657970346.65  # as in lines 4/5 of the shared conformance set


def test_new_delta_stale_delta_then_a_delta_without_power(parser):
    new = parser.parse(EV, notify({"apower": 579.0}, ts=T), R)
    assert vals(new, "power_w ts ts_source") == (579.0, T, TS_DEVICE)
    before, offset = parser.snapshot(), parser.clock_offset
    assert before["newest_ts"] == T
    stale = notify({"apower": 639.2, "aenergy": {"total": 5.0}}, ts=T - 2.0)
    with pytest.raises(NotAReading) as info:
        parser.parse(EV, stale, R + 0.5)
    assert info.value.code == "stale"
    assert "older than" in info.value.detail
    assert parser.snapshot() == before  # nothing merged, not even the counter
    assert parser.clock_offset == offset  # and no clock learned from it
    later = parser.parse(EV, notify({"voltage": 230.0}, ts=T + 2.0), R + 2)
    assert vals(later, "power_w voltage_v energy_wh ts") == (579.0, 230.0, None, T + 2)


def test_equal_ts_merges_both_frames_of_one_instant(parser):
    parser.parse(EV, notify({"apower": 10.0}, ts=T), R)
    same = parser.parse(EV, notify({"aenergy": {"total": 3}, "voltage": 229}, ts=T), R)
    assert vals(same, "power_w energy_wh voltage_v ts") == (10.0, 3.0, 229.0, T)


def test_stale_full_status_is_not_merged_either(parser):
    parser.parse(EV, notify({"apower": 10.0, "voltage": 230.0}, ts=T), R)
    full = notify({"apower": 1.0}, ts=T - 60, method="NotifyFullStatus")
    assert code_of(parser, EV, full) == "stale"
    assert parser.snapshot()["status"] == {"apower": 10.0, "voltage": 230.0}
    newer = notify({"apower": 2.0}, ts=T + 60, method="NotifyFullStatus")
    assert vals(parser.parse(EV, newer, R), "power_w voltage_v") == (2.0, None)
    assert code_of(parser, EV, notify({"apower": 3.0}, ts=T)) == "stale"
    # Frames without our component merge nothing: they keep their own code.
    assert code_of(parser, EV, notify(None, ts=T, sys={})) == "no_component"


def test_a_frame_of_the_newest_instant_sent_again_is_stale(parser):
    """Two frames of one instant both merge; the first one again (a QoS 1
    resend) must not put its power back over the second's."""
    first = notify({"apower": 500.0}, ts=T)
    parser.parse(EV, first, R)
    assert parser.parse(EV, notify({"apower": 600.0}, ts=T), R).power_w == 600.0
    assert code_of(parser, EV, first) == "stale"
    assert parser.parse(EV, notify({"current": 2.6}, ts=T + 1), R).power_w == 600.0


def test_a_clock_standing_still_is_remembered_for_its_last_frames_only(parser):
    """A meter whose clock stands still sends every frame at one instant: the
    parser remembers the last few of them, not all (its memory is bounded)."""
    frames = [notify({"apower": float(w)}, ts=T) for w in range(20)]
    for payload in frames:
        parser.parse(EV, payload, R)
    assert code_of(parser, EV, frames[-1]) == "stale"
    assert parser.parse(EV, frames[0], R).power_w == 0.0  # long forgotten


def test_frames_without_device_time_are_never_stale(parser):
    parser.parse(EV, notify({"apower": 10.0}, ts=T), R)
    status = parser.parse(f"{DEV}/status/pm1:0", b'{"apower":20}', R + 1)
    assert status.power_w == 20.0
    reply = b'{"id":1,"src":"%s","result":{"id":0,"apower":30}}' % DEV.encode()
    assert parser.parse("owm/rpc", reply, R + 2).power_w == 30.0
    assert parser.parse(f"{DEV}/online", b"true", R + 3).online is True
    # Rebooted, clock not synced yet: seconds since boot are no device time.
    unsynced = parser.parse(EV, notify({"apower": 40.0}, ts=3.2), R + 4)
    assert vals(unsynced, "power_w ts ts_source") == (40.0, R + 4, TS_RECEIVED)
    assert parser.snapshot()["newest_ts"] == T  # none of them moved it
    assert code_of(parser, EV, notify({"apower": 50.0}, ts=T - 1)) == "stale"
    assert parser.parse(EV, notify({}, ts=T), R + 5).power_w == 40.0


def test_a_stale_frame_with_a_broken_value_is_rejected_as_broken(parser):
    parser.parse(EV, notify({"apower": 10.0}, ts=T), R)
    with pytest.raises(InvalidValue):  # validated before the stale check
        parser.parse(EV, notify({"apower": -50}, ts=T - 1), R)
    assert parser.snapshot()["status"] == {"apower": 10.0}


def test_newest_ts_survives_restore_and_old_snapshots_still_load(parser):
    parser.parse(EV, notify({"apower": 10.0}, ts=T), R)
    state = json.loads(json.dumps(parser.snapshot()))
    fresh = ShellyGen2Parser(DEV)
    fresh.restore(state)
    assert fresh.snapshot() == parser.snapshot()
    assert code_of(fresh, EV, notify({"apower": 1.0}, ts=T - 1)) == "stale"
    del state["newest_ts"]  # a snapshot from before the stale check
    old = ShellyGen2Parser(DEV)
    old.restore(state)
    assert old.snapshot()["newest_ts"] is None
    assert old.parse(EV, notify({"voltage": 1.0}, ts=T - 1), R).power_w == 10.0
    assert old.snapshot()["newest_ts"] == T - 1
    old.restore(dict(state, newest_ts=1657970346))  # an int is a fine ts
    assert old.snapshot()["newest_ts"] == 1657970346.0


@pytest.mark.parametrize(
    "state",
    [
        {"status": {"apower": 10.0}, "newest_ts": "1657970346.65"},
        {"status": {"apower": 10.0}, "newest_ts": True},
        {"status": {"apower": 10.0}, "newest_ts": 12.5},  # unsynced
        {"status": {"apower": 10.0}, "newest_ts": 1e10},  # broken clock
        {"status": {"apower": 10.0}, "newest_ts": math.nan},
        {"status": {"apower": 10.0}, "newest_ts": -math.inf},
        {"status": {"apower": 10.0}, "newest_ts": [T]},
        {"status": {"apower": 10.0}, "newest_ts": T + 9, "component": "switch:0"},
    ],
)
def test_restore_drops_a_bad_newest_ts(parser, state):
    parser.restore(state)
    assert parser.snapshot()["newest_ts"] is None
    if "component" not in state:
        assert parser.parse(EV, notify({}, ts=T), R).power_w == 10.0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([T - 1.0, T, T + 0.5, T + 1.0, 2.5]),  # 2.5: unsynced
            st.one_of(st.none(), st.floats(0.0, 1000.0)),
            st.one_of(st.none(), st.floats(0.0, 1e6)),
            st.booleans(),
        ),
        max_size=12,
    )
)
def test_against_a_model_stale_frames_never_merge_and_energy_is_fresh(frames):
    parser = ShellyGen2Parser(DEV)
    newest = power = None
    merged = []  # the frames merged at the newest time: one sent again is stale
    for ts, apower, total, full in frames:
        comp = {} if apower is None else {"apower": apower}
        if total is not None:
            comp["aenergy"] = {"total": total}
        method = "NotifyFullStatus" if full else "NotifyStatus"
        payload = notify(comp, ts=ts, method=method)
        if (
            ts >= 1e9
            and newest is not None
            and (ts < newest or (ts == newest and payload in merged))
        ):
            before = parser.snapshot()
            assert code_of(parser, EV, payload) == "stale"
            assert parser.snapshot() == before
            continue
        if ts >= 1e9:
            merged = [*merged, payload] if ts == newest else [payload]
            newest = ts
        if full or apower is not None:
            power = apower
        if power is None and total is None:
            assert code_of(parser, EV, payload) == "no_power"
        else:
            reading = parser.parse(EV, payload, R)
            assert vals(reading, "power_w energy_wh") == (power, total)
        assert parser.snapshot()["newest_ts"] == newest


# -- device time ----------------------------------------------------------------


def test_clock_offset_is_learned_kept_latest_and_used_for_status_topics(parser):
    parser.parse(EV, notify({"apower": 1.0}, ts=R + 100.0), R)
    assert parser.clock_offset == 100.0
    parser.parse(EV, notify({"apower": 1.0}, ts=R + 100.5), R + 10.5)
    assert parser.clock_offset == 90.0
    parser.parse(EV, notify({"apower": 1.0}, ts=12.5), R)  # unsynced: ignored
    status = parser.parse(f"{DEV}/status/pm1:0", b'{"apower":2}', R + 5)
    assert vals(status, "ts ts_source") == (R + 95.0, TS_OFFSET)
    online = parser.parse(f"{DEV}/online", b"false", R + 6)
    assert vals(online, "ts ts_source") == (R + 96.0, TS_OFFSET)


@pytest.mark.parametrize("ts", [None, 0, 999_999_999.9, 1e10, 1e15])
def test_unsynced_missing_or_broken_clock_means_receive_time(parser, ts):
    reading = parser.parse(EV, notify({"apower": 1.0}, ts=ts), R)
    assert vals(reading, "ts ts_source") == (R, TS_RECEIVED)
    assert parser.clock_offset is None


def test_clock_offset_can_be_restored_and_is_validated(parser):
    parser.clock_offset = -2.5
    assert parser.parse(f"{DEV}/status/pm1:0", b'{"apower":2}', R).ts == R - 2.5
    parser.clock_offset = None
    for bad in (math.nan, math.inf, "1", True):
        with pytest.raises(ValueError):
            parser.clock_offset = bad


def test_snapshot_restore_roundtrip_through_json(parser):
    parser.parse(EV, notify({"apower": 50.0, "aenergy": {"total": 9.0}}), R)
    state = json.loads(json.dumps(parser.snapshot()))
    fresh = ShellyGen2Parser(DEV)
    fresh.restore(state)
    assert fresh.snapshot() == parser.snapshot()
    reading = fresh.parse(EV, notify({"voltage": 230.0}), R)
    assert vals(reading, "power_w energy_wh voltage_v") == (50.0, None, 230.0)
    assert fresh.snapshot()["status"]["aenergy"] == {"total": 9.0}
    assert fresh.clock_offset == parser.clock_offset


@pytest.mark.parametrize(
    "state",
    [
        None,
        [],
        {"status": {"apower": "x"}, "clock_offset": "soon"},
        {"status": {"apower": 5.0}, "component": "switch:0"},
        {"status": {"apower": math.nan}},
    ],
)
def test_restore_of_a_bad_snapshot_starts_fresh(parser, state):
    parser.restore(state)
    assert parser.clock_offset is None
    assert code_of(parser, EV, notify({"voltage": 1.0})) == "no_power"
