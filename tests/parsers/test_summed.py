"""A machine on several channels of one device: the sum of each channel's
held values; a repeated or stale frame of one channel changes nothing."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ...parsers import NotAReading, ShellyGen1Parser, make_parser
from ...parsers.summed import SummedParser
from .. import fixtures

EM3 = "shellies/shellyem3-485519d6fec7"
PROEM = "shellyproem50-08f9e0e5a1b2"
R = 1_800_000_000.0


def gen1_3em():
    return make_parser(
        "shelly_gen1", prefix=EM3, component="emeter:0+emeter:1+emeter:2"
    )


def test_three_phases_of_a_gen1_3em_sum_up_once_each_has_spoken():
    parser = gen1_3em()
    assert isinstance(parser, SummedParser)
    assert parser.component == "emeter:0+emeter:1+emeter:2"
    power = fixtures.frame("shellyem3_fw1.14.0_emeter_0_power.txt")  # 120.11
    with pytest.raises(NotAReading, match="emeter:1, emeter:2") as info:
        parser.parse(f"{EM3}/emeter/0/power", power, R)
    assert info.value.code == "no_power"
    with pytest.raises(NotAReading, match="emeter:2"):
        parser.parse(f"{EM3}/emeter/1/power", b"0.0", R + 1)
    phase_c = fixtures.frame("shellyem3_fw1.14.0_emeter_2_power.txt")  # 88.4
    reading = parser.parse(f"{EM3}/emeter/2/power", phase_c, R + 2)
    assert reading.power_w == pytest.approx(120.11 + 0.0 + 88.4)
    assert (reading.ts, reading.energy_wh) == (R + 2, None)
    # A phase's counter: sent as the sum once every phase has one.
    total = fixtures.frame("shellyem3_fw1.14.0_emeter_0_total.txt")  # 10533.1 Wh
    assert parser.parse(f"{EM3}/emeter/0/total", total, R + 3).energy_wh is None
    parser.parse(f"{EM3}/emeter/1/total", b"100.5", R + 4)
    summed = parser.parse(f"{EM3}/emeter/2/total", b"200.0", R + 5)
    assert summed.energy_wh == pytest.approx(10533.1 + 100.5 + 200.0)
    # The watt-minute counter since boot is not read.
    energy = fixtures.frame("shellyem3_fw1.14.0_emeter_0_energy.txt")
    with pytest.raises(NotAReading) as info:
        parser.parse(f"{EM3}/emeter/0/energy", energy, R + 6)
    assert info.value.code == "other_topic"


def test_a_stale_channel_frame_changes_nothing():
    parser = make_parser("shelly_gen2", prefix=PROEM, component="em1:0+em1:1")
    with pytest.raises(NotAReading, match="em1:1"):
        parser.parse(f"{PROEM}/events/rpc", notify(R + 10, {"em1:0": 100.0}), R)
    reading = parser.parse(f"{PROEM}/events/rpc", notify(R + 11, {"em1:1": 50.0}), R)
    assert reading.power_w == 150.0
    with pytest.raises(NotAReading) as info:
        parser.parse(f"{PROEM}/events/rpc", notify(R + 5, {"em1:0": 999.0}), R)
    assert info.value.code == "stale"
    after = parser.parse(f"{PROEM}/events/rpc", notify(R + 12, {"em1:1": 60.0}), R)
    assert after.power_w == 160.0


def test_one_channels_meter_error_is_the_machines():
    parser = make_parser("shelly_gen2", prefix=PROEM, component="em1:0+em1:1")
    before = 1_738_256_800.0  # the fixture's device time is 1.5 s later
    both = notify(before, {"em1:0": 100.0, "em1:1": 5.0})
    assert parser.parse(f"{PROEM}/events/rpc", both, before).power_w == 105.0
    bad = fixtures.frame("shellyproem50_fw1.4.4_events_notify_status_em1_errors.json")
    reading = parser.parse(f"{PROEM}/events/rpc", bad, before)
    assert (reading.power_w, reading.meter_errors) == (
        None,
        ("em1:1: out_of_range:current",),
    )


def test_snapshot_restore_and_clock_offset():
    parser = make_parser("shelly_gen2", prefix=PROEM, component="em1:0+em1:1")
    parser.parse(
        f"{PROEM}/events/rpc", notify(R + 100, {"em1:0": 7.0, "em1:1": 3.0}), R
    )
    assert parser.clock_offset == 100.0
    again = make_parser("shelly_gen2", prefix=PROEM, component="em1:0+em1:1")
    again.restore(json.loads(json.dumps(parser.snapshot())))
    status = again.parse(f"{PROEM}/status/em1:1", b'{"id":1,"act_power":4.0}', R + 1)
    assert (status.power_w, status.ts) == (11.0, R + 101)
    other = make_parser("shelly_gen2", prefix=PROEM, component="em1:0+em1:1")
    other.restore({"component": "em1:0", "channels": []})  # not its own: ignored
    assert other.clock_offset is None


@pytest.mark.parametrize(
    "component",
    [
        "emeter:0+emeter:0",
        "emeter:0",
        "emeter:0+" + "+".join(f"emeter:{i}" for i in range(1, 9)),
    ],
)
def test_channels_are_two_to_eight_and_distinct(component):
    if "+" not in component:
        assert isinstance(
            make_parser("shelly_gen1", prefix=EM3, component=component),
            ShellyGen1Parser,
        )
        return
    with pytest.raises(ValueError, match="summed channels|named twice"):
        make_parser("shelly_gen1", prefix=EM3, component=component)


def notify(ts, powers):
    params = {"ts": ts}
    params.update({c: {"act_power": w} for c, w in powers.items()})
    return json.dumps({"method": "NotifyStatus", "params": params}).encode()


FRAMES = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 2]),  # the phase
        st.one_of(
            st.floats(0, 5000, allow_nan=False).map(lambda w: round(w, 1)),
            st.none(),  # a frame sent twice
        ),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(frames=FRAMES)
def test_the_sum_is_the_sum_of_the_held_phase_values(frames):
    """Against a model: each phase holds its last power; the reading is their
    sum once all three spoke; a repeated frame gives the same sum."""
    parser = gen1_3em()
    held = [None, None, None]
    last = None
    for n, (phase, watts) in enumerate(frames):
        if watts is None:
            if last is None:
                continue
            phase, watts = last  # the same frame again
        last = (phase, watts)
        topic = f"{EM3}/emeter/{phase}/power"
        held[phase] = watts
        if None in held:
            with pytest.raises(NotAReading):
                parser.parse(topic, str(watts).encode(), R + n)
            continue
        reading = parser.parse(topic, str(watts).encode(), R + n)
        assert reading.power_w == pytest.approx(sum(held))


STALE = st.lists(
    st.tuples(
        st.sampled_from(["em1:0", "em1:1"]),
        st.integers(0, 30),  # device time: later, equal or older
        st.floats(0, 3000, allow_nan=False).map(lambda w: round(w, 1)),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(frames=STALE)
def test_a_stale_channel_frame_never_changes_the_sum(frames):
    """Against a model: each channel keeps its own device time, so a frame
    older than that channel's newest, or one merged at that time already, is
    stale and its power is not held; a later one (even older than the other
    channel's) is held and summed."""
    parser = make_parser("shelly_gen2", prefix=PROEM, component="em1:0+em1:1")
    held: dict[str, float] = {}
    newest: dict[str, float] = {}
    merged: dict[str, list] = {}  # frames merged at the newest time, per channel
    for channel, dt, watts in frames:
        ts = R + dt
        payload = notify(ts, {channel: watts})
        if channel in newest and (
            ts < newest[channel]
            or (ts == newest[channel] and payload in merged[channel])
        ):
            with pytest.raises(NotAReading) as info:
                parser.parse(f"{PROEM}/events/rpc", payload, R)
            assert info.value.code == "stale"
            continue
        if ts == newest.get(channel):
            merged[channel].append(payload)
        else:
            merged[channel] = [payload]
        newest[channel] = ts
        held[channel] = watts
        if len(held) < 2:
            with pytest.raises(NotAReading) as info:
                parser.parse(f"{PROEM}/events/rpc", payload, R)
            assert info.value.code == "no_power"
            continue
        reading = parser.parse(f"{PROEM}/events/rpc", payload, R)
        assert (reading.ts, reading.power_w) == (ts, pytest.approx(sum(held.values())))
