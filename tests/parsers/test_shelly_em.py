"""Shelly energy meters (Gen2+): the three-phase ``em:N`` with its counter in
``emdata:N``, the one-channel ``em1:N`` with ``em1data:N``; each message kind
from its fixture, and discovery of Gen4 and EM devices."""

import json

import pytest

from ...parsers import (
    TS_DEVICE,
    TS_OFFSET,
    TS_RECEIVED,
    NotAReading,
    ShellyGen2Parser,
    UnexpectedShape,
    discovered_component,
    make_parser,
    poll_request,
)
from .. import fixtures

PRO3EM = "shellypro3em-c8f09e8841d8"
MONO = "shellypro3em-34987a446e54"
PROEM = "shellyproem50-08f9e0e5a1b2"
R = 1_714_766_409.0


def frame(name):
    return fixtures.frame(name)


def notify(params):
    return ('{"method":"NotifyStatus","params":{' + params + "}}").encode()


def em(prefix=PRO3EM):
    return ShellyGen2Parser(prefix, "em:0")


def test_an_em_delta_reads_the_sum_of_the_phases():
    parser = em()
    reading = parser.parse(
        f"{PRO3EM}/events/rpc",
        frame("shellypro3em_fw1.2.2_events_notify_status_em.json"),
        R,
    )
    assert (reading.power_w, reading.energy_wh) == (103.964, None)
    assert (reading.ts, reading.ts_source) == (1714766408.04, TS_DEVICE)
    assert reading.device_key == PRO3EM
    # The counter comes a minute later in emdata:0, with the power held.
    counter = parser.parse(
        f"{PRO3EM}/events/rpc",
        frame("shellypro3em_fw1.2.2_events_notify_status_emdata.json"),
        R + 52,
    )
    assert (counter.power_w, counter.energy_wh) == (103.964, 20269.29)
    # A later power delta does not repeat the counter as a new sample.
    delta = notify('"ts":1714766461.5,"em:0":{"id":0,"total_act_power":200.5}')
    later = parser.parse(f"{PRO3EM}/events/rpc", delta, R + 53)
    assert (later.power_w, later.energy_wh) == (200.5, None)


def test_an_em_full_status_carries_power_and_counter():
    reading = em().parse(
        f"{PRO3EM}/events/rpc",
        frame("shellypro3em_fw1.6.1_events_notify_full_status.json"),
        R,
    )
    assert (reading.power_w, reading.energy_wh) == (2413.825, 5415414.19)
    assert reading.source == "notify_full_status"


def test_em_status_topics_power_and_counter_apart():
    parser = em()
    parser.parse(  # learns the clock offset
        f"{PRO3EM}/events/rpc",
        frame("shellypro3em_fw1.2.2_events_notify_status_em.json"),
        1714766408.04 - 3.0,
    )
    status = parser.parse(
        f"{PRO3EM}/status/em:0", frame("shellypro3em_fw1.4.4_status_em_0.json"), R
    )
    # One phase feeds back (-60.2 W): the machine's power is the sum.
    assert (status.power_w, status.ts, status.ts_source) == (
        392.572,
        R + 3.0,
        TS_OFFSET,
    )
    counter = parser.parse(
        f"{PRO3EM}/status/emdata:0",
        frame("shellypro3em_fw1.6.1_status_emdata_0.json"),
        R + 1,
    )
    assert (counter.power_w, counter.energy_wh) == (392.572, 5415414.19)
    # The full em status keeps the counter the other component holds (held,
    # not sent again: it is no new sample).
    again = parser.parse(
        f"{PRO3EM}/status/em:0", frame("shellypro3em_fw1.4.4_status_em_0.json"), R + 2
    )
    assert (again.energy_wh, parser.held_energy()) == (None, 5415414.19)


def test_an_em_poll_reply_and_its_request():
    parser = em()
    reading = parser.parse(
        "owm-bridge/rpc", frame("shellypro3em_fw1.6.1_rpc_reply_em_getstatus.json"), R
    )
    assert (reading.power_w, reading.source, reading.ts_source) == (
        2413.825,
        "rpc_reply",
        TS_RECEIVED,
    )
    suffix, payload = poll_request("em:0", 7, "owm-bridge")
    assert suffix == "rpc"
    assert (
        payload
        == '{"id":7,"src":"owm-bridge","method":"EM.GetStatus","params":{"id":0}}'
    )
    _suffix, payload = poll_request("em1:1", 8, "owm-bridge")
    assert '"method":"EM1.GetStatus","params":{"id":1}' in payload
    _suffix, payload = poll_request("em1:0+em1:1", 9, "owm-bridge")
    assert payload == '{"id":9,"src":"owm-bridge","method":"Shelly.GetStatus"}'


def test_em_failures_make_the_power_untrusted_warnings_do_not():
    parser = em()
    # phase_sequence (phases turn A-C-B) comes with a valid power: a warning.
    reading = parser.parse(
        f"{PRO3EM}/status/em:0", frame("shellypro3em_docs_status_em_0_errors.json"), R
    )
    assert (reading.power_w, reading.meter_errors) == (2484.782, ())
    # A phase's own failure is named with the phase and hides the power.
    delta = notify(
        '"ts":1714766500.0,"em:0":{"errors":["phase_sequence","power_meter_failure"],'
        '"b_errors":["out_of_range:current"],"total_act_power":900.0}'
    )
    failing = parser.parse(f"{PRO3EM}/events/rpc", delta, R)
    assert (failing.power_w, failing.meter_errors) == (
        None,
        ("power_meter_failure", "phase b: out_of_range:current"),
    )
    # A delta leaves out what did not change: errors it does not name stay,
    # and so does the untrusted power ...
    still = notify('"ts":1714766500.5,"em:0":{"total_act_power":950.0}')
    reading = parser.parse(f"{PRO3EM}/events/rpc", still, R)
    assert (reading.power_w, reading.meter_errors[0]) == (None, "power_meter_failure")
    # ... a whole status without them ends them.
    whole = frame("shellypro3em_docs_status_em_0_errors.json")
    assert parser.parse(f"{PRO3EM}/status/em:0", whole, R).meter_errors == ()
    again = notify(
        '"ts":1714766500.8,"em:0":{"errors":["power_meter_failure"],'
        '"b_errors":["out_of_range:current"]}'
    )
    assert parser.parse(f"{PRO3EM}/events/rpc", again, R).power_w is None
    # ... and so does a delta that sets them to null or [].
    cleared = notify(
        '"ts":1714766501.0,"em:0":{"errors":[],"b_errors":null,"total_act_power":12.5}'
    )
    reading = parser.parse(f"{PRO3EM}/events/rpc", cleared, R)
    assert (reading.power_w, reading.meter_errors) == (12.5, ())
    # One phase failing alone, then null: the power held before the failure
    # is not trusted again, the next one is.
    again = notify('"ts":1714766502.0,"em:0":{"c_errors":["out_of_range:voltage"]}')
    assert parser.parse(f"{PRO3EM}/events/rpc", again, R).power_w is None
    gone = notify('"ts":1714766503.0,"em:0":{"c_errors":null}')
    with pytest.raises(NotAReading) as info:
        parser.parse(f"{PRO3EM}/events/rpc", gone, R)
    assert info.value.code == "no_power"
    back = notify('"ts":1714766504.0,"em:0":{"total_act_power":40.0}')
    assert parser.parse(f"{PRO3EM}/events/rpc", back, R).power_w == 40.0


def test_a_channels_poll_reply_is_not_another_channels():
    channel = ShellyGen2Parser(PROEM, "em1:1")
    answer = frame("shellyproem50_fw1.4.4_rpc_reply_em1_getstatus.json")  # id 0
    with pytest.raises(NotAReading) as info:
        channel.parse("owm-bridge/rpc", answer, R)
    assert info.value.code == "rpc_result"


def test_an_early_firmwares_empty_emdata_is_no_fresh_counter():
    parser = em()
    full = frame("shellypro3em_fw1.6.1_events_notify_full_status.json")
    assert parser.parse(f"{PRO3EM}/events/rpc", full, R).energy_wh is not None
    reply = json.dumps(
        {"id": 3, "src": "shellypro3em-c8f09e8841d8", "result": {"emdata:0": {"id": 0}}}
    )
    assert parser.parse("owm-bridge/rpc", reply, R).energy_wh is None


def test_an_em_unsynced_clock_is_the_receive_time():
    reading = em().parse(
        f"{PRO3EM}/events/rpc",
        frame("shellypro3em_fw1.6.1_events_notify_status_em_unsynced_ts.json"),
        R,
    )
    assert (reading.power_w, reading.ts, reading.ts_source) == (2402.1, R, TS_RECEIVED)


def test_an_early_firmware_emdata_without_counter_changes_nothing():
    parser = em()
    parser.parse(
        f"{PRO3EM}/events/rpc",
        frame("shellypro3em_fw1.2.2_events_notify_status_em.json"),
        R,
    )
    bare = notify('"ts":1714766409.0,"emdata:0":{"id":0}')
    reading = parser.parse(f"{PRO3EM}/events/rpc", bare, R)
    assert (reading.power_w, reading.energy_wh) == (103.964, None)


def test_an_em1_channel_delta_and_its_counter():
    parser = ShellyGen2Parser(MONO, "em1:0")
    reading = parser.parse(
        f"{MONO}/events/rpc",
        frame("shellypro3em_monophase_fw1.4.4_events_notify_status_em1.json"),
        R,
    )
    assert (reading.power_w, reading.voltage_v, reading.current_a) == (
        1.2,
        235.2,
        0.081,
    )
    counter = parser.parse(
        f"{MONO}/events/rpc",
        frame("shellypro3em_monophase_fw1.4.4_events_notify_status_em1data.json"),
        R + 16,
    )
    assert (counter.power_w, counter.energy_wh) == (1.2, 6737.72)
    # Another channel's frame is not this channel's.
    other = ShellyGen2Parser(MONO, "em1:1")
    with pytest.raises(NotAReading) as info:
        other.parse(
            f"{MONO}/events/rpc",
            frame("shellypro3em_monophase_fw1.4.4_events_notify_status_em1.json"),
            R,
        )
    assert info.value.code == "no_component"


def test_em1_status_topic_poll_reply_and_errors():
    status = ShellyGen2Parser("shelly3em63g3-48f6eead1a8c", "em1:2").parse(
        "shelly3em63g3-48f6eead1a8c/status/em1:2",
        frame("shelly3em63g3_fw2.0.0_status_em1_2.json"),
        R,
    )
    assert (status.power_w, status.voltage_v) == (219.4, 228.5)
    channel = ShellyGen2Parser(PROEM, "em1:0")
    reply = channel.parse(
        "owm-bridge/rpc", frame("shellyproem50_fw1.4.4_rpc_reply_em1_getstatus.json"), R
    )
    assert (reply.power_w, reply.source) == (332.2, "rpc_reply")
    failing = ShellyGen2Parser(PROEM, "em1:1").parse(
        f"{PROEM}/events/rpc",
        frame("shellyproem50_fw1.4.4_events_notify_status_em1_errors.json"),
        R,
    )
    assert (failing.power_w, failing.meter_errors) == (None, ("out_of_range:current",))


def test_em_data_must_be_an_object():
    bad = notify('"ts":1714766409.0,"emdata:0":[1]')
    with pytest.raises(UnexpectedShape):
        em().parse(f"{PRO3EM}/events/rpc", bad, R)


@pytest.mark.parametrize(
    ("device_id", "keys", "component"),
    [
        ("shelly1pmg4-7c2c67667790", ["switch:0"], "switch:0"),
        ("shelly1pmg4-7c2c67667790", [], "switch:0"),
        ("shellypmminig4-a0b1c2d3e4f5", [], "pm1:0"),
        ("shellypmminig3-84fce638d818", ["sys"], "pm1:0"),
        ("shellyemminig4-7c2c6763f75c", [], "em1:0"),
        ("shellypro3em-c8f09e8841d8", ["em:0", "emdata:0"], "em:0"),
        ("shellypro3em-c8f09e8841d8", ["emdata:0"], "em:0"),
        ("shellypro3em-34987a446e54", ["em1data:0", "em1:0"], "em1:0"),
        ("shellyproem50-08f9e0e5a1b2", [], "em1:0"),
        ("shelly3em63g3-48f6eead1a8c", [], "em:0"),
        ("shelly2pmg4-7c2c677a0110", ["input:0"], "switch:0"),
    ],
)
def test_discovery_reads_a_device_on_its_metering_component(device_id, keys, component):
    assert discovered_component(device_id, keys) == component
    make_parser("shelly_gen2", prefix=device_id, component=component)  # usable


@pytest.mark.parametrize("component", ["emdata:0", "em2:0", "sys:0", "em:0+sys:0"])
def test_a_component_without_power_is_a_channel_without_readings(component):
    """Read by what the device sends (tests/parsers/test_components.py): a
    component that carries no power gives frames without a reading."""
    parser = make_parser("shelly_gen2", prefix="shellypro3em-x", component=component)
    frame = {"src": "shellypro3em-x", "method": "NotifyStatus"}
    frame["params"] = {"ts": 1.78e9, "sys:0": {"uptime": 77}}
    if "+" in component:
        return  # summed: its power is known once every channel reported
    with pytest.raises(NotAReading):
        parser.parse("shellypro3em-x/events/rpc", json.dumps(frame), 1.78e9)


@pytest.mark.parametrize("component", ["Em:0", "em", "em:x", "e m:0", "em1:-1"])
def test_not_a_component_name(component):
    with pytest.raises(ValueError):
        make_parser("shelly_gen2", prefix="shellypro3em-x", component=component)
