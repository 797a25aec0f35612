"""ShellyGen2Parser, one frame at a time: own fixtures, topics, replies, rejections.

State across frames (delta merging, device clock, snapshots) is in
test_shelly_state.py.
"""

import json

import pytest

from ...parsers import (
    TS_DEVICE,
    TS_OFFSET,
    TS_RECEIVED,
    InvalidValue,
    Limits,
    MalformedJson,
    NotAReading,
    NotUtf8,
    PayloadTooLarge,
    RejectedPayload,
    ShellyGen2Parser,
    UnexpectedShape,
    poll_request,
    reply_route,
)
from ...parsers.exceptions import unexpected
from ...parsers.shelly_rpc import split_component, subscriptions
from .. import fixtures

DEV = "shellypmminig3-84fce63957f4"
EV = f"{DEV}/events/rpc"
R = 1_752_840_154.0  # receive time: 0.58 s after the delta fixture's ts


fixture = fixtures.frame


def pm(name):
    return fixture(f"shellypmminig3_fw1.6.2_{name}")


def notify(comp=None, ts=1752840160.0, method="NotifyStatus", key="pm1:0", **extra):
    params = {"ts": ts} if ts is not None else {}
    if comp is not None:
        params[key] = comp
    params.update(extra)
    frame = {"src": DEV, "dst": f"{DEV}/events", "method": method, "params": params}
    return json.dumps(frame).encode()


def vals(reading, names):
    return tuple(getattr(reading, name) for name in names.split())


def code_of(parser, topic, payload, exc=NotAReading, at=R):
    with pytest.raises(exc) as info:
        parser.parse(topic, payload, at)
    return info.value.code


@pytest.fixture
def parser():
    return ShellyGen2Parser(DEV)


# -- own fixtures, one per message kind --------------------------------------


def test_notify_status_delta(parser):
    reading = parser.parse(EV, pm("events_notify_status_delta.json"), R)
    assert vals(reading, "power_w current_a") == (1234.5, 5.321)
    assert vals(reading, "energy_wh voltage_v") == (None, None)
    assert vals(reading, "ts ts_source") == (1752840153.42, TS_DEVICE)
    assert vals(reading, "source device_key") == ("notify_status", DEV)
    assert parser.clock_offset == pytest.approx(1752840153.42 - R)


def test_full_status_then_power_delta_then_energy_delta(parser):
    full = parser.parse(EV, pm("events_notify_full_status.json"), R)
    assert vals(full, "power_w energy_wh voltage_v") == (4.4, 42291.09, 229.8)
    assert vals(full, "source ts") == ("notify_full_status", 1752840121.07)
    # Power and voltage are held; the counter is only sent with a fresh total.
    power = parser.parse(EV, pm("events_notify_status_delta.json"), R)
    assert vals(power, "power_w energy_wh voltage_v") == (1234.5, None, 229.8)
    energy = parser.parse(EV, pm("events_notify_status_energy.json"), R + 27)
    assert vals(energy, "power_w energy_wh voltage_v") == (1234.5, 42312.456, 229.8)
    assert energy.ts == 1752840180.01


def test_notify_event_is_not_a_reading_but_teaches_the_clock(parser):
    assert code_of(parser, EV, pm("events_notify_event.json")) == "notify_event"
    assert parser.clock_offset == pytest.approx(1752840200.55 - R)


def test_status_pm1_topic(parser):
    reading = parser.parse(f"{DEV}/status/pm1:0", pm("status_pm1_0.json"), R)
    assert vals(reading, "power_w energy_wh") == (4.4, 42291.09)
    assert vals(reading, "voltage_v current_a") == (229.8, 0.046)
    assert vals(reading, "ts ts_source source") == (R, TS_RECEIVED, "status")
    assert reading.device_key == DEV


def test_status_switch_topic():
    parser = ShellyGen2Parser("shelly1pmminig3-5432044edbc0", "switch:0")
    payload = fixture("shelly1pmminig3_fw1.6.2_status_switch_0.json")
    reading = parser.parse("shelly1pmminig3-5432044edbc0/status/switch:0", payload, R)
    assert vals(reading, "power_w energy_wh current_a") == (87.3, 1520.334, 0.402)


@pytest.mark.parametrize("flag", [True, False])
def test_online(parser, flag):
    reading = parser.parse(f"{DEV}/online", pm(f"online_{str(flag).lower()}.txt"), R)
    assert vals(reading, "online power_w source") == (flag, None, "online")
    assert vals(reading, "ts ts_source device_key") == (R, TS_RECEIVED, DEV)


@pytest.mark.parametrize("payload", [b" true\n", "false", b"TRUE"])
def test_online_tolerates_whitespace(parser, payload):
    assert parser.parse(f"{DEV}/online", payload, R).online in (True, False)


@pytest.mark.parametrize(
    "payload", [b"1", b"online", b'{"online":true}', b"", b"t" * 99]
)
def test_online_garbage_is_rejected(parser, payload):
    assert (
        code_of(parser, f"{DEV}/online", payload, RejectedPayload) == "invalid_online"
    )


def test_rpc_reply_result_is_a_full_status_on_the_learned_clock(parser):
    parser.parse(EV, pm("events_notify_status_delta.json"), R)
    offset = parser.clock_offset
    reply = parser.parse("owmqtt-1/rpc", pm("rpc_reply_pm1_getstatus.json"), R + 30)
    assert vals(reply, "power_w energy_wh voltage_v") == (1241.9, 42312.456, 230.1)
    assert vals(reply, "source device_key ts_source") == ("rpc_reply", DEV, TS_OFFSET)
    assert reply.ts == pytest.approx(R + 30 + offset)
    assert parser.clock_offset == offset  # replies carry no device time


def test_rpc_reply_switch_getstatus():
    parser = ShellyGen2Parser("shelly1pmminig3-5432044edbc0", "switch:0")
    payload = fixture("shelly1pmminig3_fw1.6.2_rpc_reply_switch_getstatus.json")
    reading = parser.parse("owmqtt-1/rpc", payload, R)
    assert vals(reading, "power_w energy_wh source") == (88.1, 1521.79, "rpc_reply")
    assert vals(reading, "ts ts_source") == (R, TS_RECEIVED)


def test_rpc_reply_error(parser):
    with pytest.raises(NotAReading) as info:
        parser.parse("owmqtt-1/rpc", pm("rpc_reply_error.json"), R)
    assert info.value.code == "rpc_error"
    assert "404" in info.value.detail and "No handler" in info.value.detail


def test_meter_errors_give_no_power_and_power_comes_back_after(parser):
    parser.parse(f"{DEV}/status/pm1:0", pm("status_pm1_0.json"), R)
    bad = parser.parse(f"{DEV}/status/pm1:0", pm("status_pm1_0_errors.json"), R + 1)
    assert vals(bad, "power_w energy_wh meter_errors") == (
        None,
        None,
        ("power_meter_failure",),
    )
    # Still failing: a voltage delta repeats the errors, never a power.
    still = parser.parse(EV, notify({"voltage": 230.0}), R + 2)
    assert vals(still, "power_w meter_errors") == (None, ("power_meter_failure",))
    # Errors gone (null) but the failing frame's power is not held.
    assert code_of(parser, EV, notify({"errors": None}), at=R + 3) == "no_power"
    back = parser.parse(EV, notify({"apower": 5.0}), R + 4)
    assert vals(back, "power_w meter_errors") == (5.0, ())


def test_unsynced_ts_uses_receive_time_and_learns_nothing(parser):
    reading = parser.parse(EV, pm("events_notify_status_unsynced_ts.json"), R)
    assert vals(reading, "power_w ts ts_source") == (4.4, R, TS_RECEIVED)
    assert parser.clock_offset is None


def test_poll_request_matches_the_request_fixture():
    suffix, payload = poll_request("pm1:0", 7, "owmqtt-1")
    assert suffix == "rpc"
    assert json.loads(payload) == json.loads(pm("rpc_request_pm1_getstatus.json"))


# -- topics, replies and methods without a reading -----------------------------


@pytest.mark.parametrize(
    ("topic", "code"),
    [
        (f"{DEV}/rpc", "rpc_request"),
        (f"{DEV}/debug/log", "other_topic"),
        (f"{DEV}/command", "other_topic"),
        (f"{DEV}/events/rpc/x", "other_topic"),
        ("other-device/events/rpc", "foreign_topic"),
        (DEV, "foreign_topic"),
    ],
)
def test_topics_without_readings(parser, topic, code):
    assert code_of(parser, topic, b"not even json") == code


def test_replies_that_are_not_a_status(parser):
    parser.parse(EV, notify({"apower": 9.0}), R)
    set_reply = b'{"id":3,"src":"%s","dst":"x","result":{"was_on":true}}' % DEV.encode()
    assert code_of(parser, "x/rpc", set_reply) == "rpc_result"
    null_result = b'{"id":3,"src":"%s","result":null}' % DEV.encode()
    assert code_of(parser, "x/rpc", null_result) == "rpc_result"
    assert code_of(parser, "x/rpc", b'{"id":3,"src":"x","method":"Switch.Set"}') == (
        "rpc_request"
    )
    assert code_of(parser, "x/rpc", b'{"id":3}', UnexpectedShape) == "unexpected_shape"
    other = b'{"id":1,"src":"shellyplus1-aa","result":{"id":0,"apower":1}}'
    assert code_of(parser, "x/rpc", other) == "foreign_reply"
    assert parser.snapshot()["status"] == {"apower": 9.0}


def test_shelly_getstatus_reply_with_the_whole_device(parser):
    frame = {
        "id": 1,
        "src": DEV,
        "result": {"sys": {}, "pm1:0": {"id": 0, "apower": 7}},
    }
    assert parser.parse("x/rpc", json.dumps(frame), R).power_w == 7.0


def test_unknown_method(parser):
    assert code_of(parser, EV, notify({"apower": 1}, method="NotifySomething")) == (
        "unknown_method"
    )


# -- rejections: every path with its code, and the state is never touched -------


NS = b'{"method":"NotifyStatus","params":{"pm1:0":{"apower":%s}}}'
REJECTIONS = [
    (notify({"apower": 1e12}), InvalidValue, "absurd_power"),
    (notify({"apower": 100001}), InvalidValue, "absurd_power"),
    (notify({"apower": -5}), InvalidValue, "negative_power"),
    (notify({"apower": 10**400}), InvalidValue, "out_of_range"),
    (notify({"apower": "12"}), InvalidValue, "not_a_number"),
    (notify({"apower": True}), InvalidValue, "not_a_number"),
    (notify({"apower": [1]}), InvalidValue, "not_a_number"),
    (notify({"apower": 1, "voltage": "230"}), InvalidValue, "not_a_number"),
    (notify({"apower": 1, "current": False}), InvalidValue, "not_a_number"),
    (notify({"aenergy": {"total": -1}}), InvalidValue, "negative_energy"),
    (notify({"aenergy": 5}), UnexpectedShape, "unexpected_shape"),
    (notify({"errors": "power_meter_failure"}), UnexpectedShape, "invalid_errors"),
    (notify({"errors": [1]}), UnexpectedShape, "invalid_errors"),
    (notify("x"), UnexpectedShape, "unexpected_shape"),
    (notify({"apower": 1}, ts="1752840160"), InvalidValue, "invalid_ts"),
    (notify({"apower": 1}, ts=-1), InvalidValue, "invalid_ts"),
    (notify({"apower": 1}, ts=True), InvalidValue, "invalid_ts"),
    (NS % b"NaN", InvalidValue, "non_finite"),
    (NS % b"Infinity", InvalidValue, "non_finite"),
    (NS % b"-Infinity", InvalidValue, "non_finite"),
    (NS % b"1e400", InvalidValue, "non_finite"),
    (b'{"method":"NotifyStatus","params":{"ts":NaN}}', InvalidValue, "non_finite"),
    (NS % (b"1" * 5000), MalformedJson, "malformed_json"),  # > 4300 digits
    (b'{"method":"NotifyStatus","params":[]}', UnexpectedShape, "unexpected_shape"),
    (b'{"method":"NotifyStatus"}', UnexpectedShape, "unexpected_shape"),
    (b"[1, 2]", UnexpectedShape, "unexpected_shape"),
    (b"42", UnexpectedShape, "unexpected_shape"),
    (b"[", MalformedJson, "malformed_json"),
    (b'{"src":"x","params":{"pm1:0":{"apower":1', MalformedJson, "malformed_json"),
    (b'{"a":1} {"b":2}', MalformedJson, "malformed_json"),
    (b"", MalformedJson, "malformed_json"),
    (b"   ", MalformedJson, "malformed_json"),
    (b"\xff\xfe{}", NotUtf8, "not_utf8"),
    (b'{"src":"\xed\xa0\x80"}', NotUtf8, "not_utf8"),  # an encoded lone surrogate
    (b"[" * 10_000 + b"]" * 10_000, RejectedPayload, "too_deep"),
    (b'{"params":' + b"[" * 33 + b"]" * 33 + b"}", RejectedPayload, "too_deep"),
    (NS % (b'1,"pad":"' + b"x" * 70_000 + b'"'), PayloadTooLarge, "too_large"),
    (12.5, UnexpectedShape, "unexpected_shape"),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "exc", "code"), REJECTIONS)
def test_rejections_leave_the_state_alone(parser, payload, exc, code):
    parser.parse(EV, notify({"apower": 9.0, "aenergy": {"total": 1.0}}, ts=R - 1), R)
    before = parser.snapshot()
    assert code_of(parser, EV, payload, exc) == code
    assert parser.snapshot() == before


def test_nesting_up_to_the_limit_is_fine(parser):
    deep = "[" * 29 + "]" * 29  # + frame, params, pm1:0 = 32 levels
    payload = (
        '{"method":"NotifyStatus","params":{"pm1:0":{"apower":1,"x":' + deep + "}}}"
    )
    assert parser.parse(EV, payload, R).power_w == 1.0
    strict = ShellyGen2Parser(DEV, limits=Limits(max_json_depth=31))
    assert code_of(strict, EV, payload, RejectedPayload) == "too_deep"


def test_small_negative_power_is_meter_noise(parser):
    assert parser.parse(EV, notify({"apower": -0.6}), R).power_w == 0.0
    assert parser.parse(EV, notify({"apower": -1}), R).power_w == 0.0


def test_limits_are_per_parser():
    parser = ShellyGen2Parser(
        DEV, limits=Limits(max_power_w=3680.0, max_payload_bytes=64)
    )
    assert code_of(parser, EV, notify({"apower": 4.0}), PayloadTooLarge) == "too_large"
    small = b'{"method":"NotifyStatus","params":{"pm1:0":{"apower":3681}}}'
    assert code_of(parser, EV, small, InvalidValue) == "absurd_power"


def test_str_payload_size_counts_utf8_bytes():
    parser = ShellyGen2Parser(DEV, limits=Limits(max_payload_bytes=100))
    text = '{"params":{"pm1:0":{"apower":1}},"method":"NotifyStatus","x":"%s"}' % (
        "\u00e4" * 30
    )
    assert len(text) < 100 < len(text.encode())
    assert code_of(parser, EV, text, PayloadTooLarge) == "too_large"


@pytest.mark.parametrize("topic", [None, 5, b"x/events/rpc"])
def test_wrong_argument_types_become_rejections(parser, topic):
    assert code_of(parser, topic, b"{}", RejectedPayload) == "unexpected_shape"


# -- helpers for the bridge -------------------------------------------------------


def test_poll_requests():
    assert poll_request("switch:1", 2, "owm")[1] == (
        '{"id":2,"src":"owm","method":"Switch.GetStatus","params":{"id":1}}'
    )
    assert (
        json.loads(poll_request("light:0", 3, "a/b")[1])["method"] == "Light.GetStatus"
    )
    # Any component is polled in its own namespace (test_components.py).
    assert json.loads(poll_request("input:0", 4, "s")[1])["method"] == "Input.GetStatus"
    for bad in [
        ("pm1", 1, "s"),
        ("pm1:0", "1", "s"),
        ("pm1:0", 1, "a/+"),
    ]:
        with pytest.raises(ValueError):
            poll_request(*bad)


def test_subscriptions():
    assert subscriptions("shelly/ug/heizraum/trockner") == [
        "shelly/ug/heizraum/trockner/events/rpc",
        "shelly/ug/heizraum/trockner/status/+",
        "shelly/ug/heizraum/trockner/online",
    ]
    assert ShellyGen2Parser("p").subscriptions() == subscriptions("p")
    for bad in ("", "a/+", "a/#"):
        with pytest.raises(ValueError):
            subscriptions(bad)


def test_reply_route():
    assert reply_route(pm("rpc_reply_pm1_getstatus.json")) == (7, DEV)
    assert reply_route(pm("rpc_reply_error.json")) == (8, DEV)
    assert reply_route(pm("rpc_request_pm1_getstatus.json")) is None
    for junk in (b"\xff", b"[", b"[]", b'{"id":true,"src":"x","result":{}}', None, 5):
        assert reply_route(junk) is None


@pytest.mark.parametrize(
    ("prefix", "component"),
    [("", "pm1:0"), ("a/#", "pm1:0"), ("a", "pm1"), ("a", ":0")],
)
def test_constructor_validates(prefix, component):
    with pytest.raises(ValueError):
        ShellyGen2Parser(prefix, component)


@pytest.mark.parametrize("component", [None, 0, "pm1", "pm1:x", ":0", "pm1:٣"])
def test_a_malformed_component_is_refused_in_words(component):
    with pytest.raises(ValueError, match="component must look like 'pm1:0'"):
        split_component(component)


def test_a_surprise_inside_a_parser_is_an_unexpected_shape():
    err = unexpected(KeyError("apower"))
    assert type(err) is UnexpectedShape
    assert (err.code, err.detail) == ("unexpected_shape", "KeyError: 'apower'")
