"""GenericJsonParser (paths, plain numbers) and the parser factory."""

import pytest

from ...parsers import (
    METER_KINDS,
    TS_DEVICE,
    TS_RECEIVED,
    GenericJsonParser,
    InvalidValue,
    MalformedJson,
    NotAReading,
    NotUtf8,
    PayloadTooLarge,
    RejectedPayload,
    ShellyGen1Parser,
    ShellyGen2Parser,
    UnexpectedShape,
    make_parser,
    subscriptions_for,
)
from ...parsers.values import Limits
from .. import fixtures

R = 1_752_840_154.0
TOPIC = "tele/saw/SENSOR"


fixture = fixtures.frame


def code_of(parser, payload, exc=NotAReading, topic=TOPIC):
    with pytest.raises(exc) as info:
        parser.parse(topic, payload, R)
    return info.value.code


def test_tasmota_fixture_with_kwh_total():
    parser = GenericJsonParser(TOPIC, "ENERGY.Power", "ENERGY.Total", energy_scale=1000)
    reading = parser.parse(TOPIC, fixture("tasmota_fw14.2.0_tele_sensor.json"), R)
    assert (reading.power_w, reading.energy_wh) == (123.0, 12345.0)
    assert (reading.ts, reading.ts_source, reading.device_key) == (
        R,
        TS_RECEIVED,
        TOPIC,
    )


def test_esphome_plain_number_fixture():
    topic = "saw-node/sensor/saw_power/state"
    parser = GenericJsonParser(topic)
    payload = fixture("esphome_fw2024.12.0_sensor_power_state.txt")
    assert parser.parse(topic, payload, R).power_w == 87.3


def test_list_index_path_and_device_time_fixture():
    parser = GenericJsonParser("lab/+/power", "sensors.0.w", "sensors.0.wh", "ts")
    payload = fixture("custom-esp32_fw1.0_sensor_array.json")
    reading = parser.parse("lab/saw/power", payload, R)
    assert (reading.power_w, reading.energy_wh) == (42.5, 1000.0)
    assert (reading.ts, reading.ts_source, reading.device_key) == (
        1752840153.0,
        TS_DEVICE,
        "lab/saw/power",
    )


@pytest.mark.parametrize(
    ("payload", "ts", "source"),
    [
        (b'{"p":1,"t":12.5}', R, TS_RECEIVED),  # seconds since boot
        (b'{"p":1,"t":1752840000}', 1752840000.0, TS_DEVICE),
        (b'{"p":1,"t":null}', R, TS_RECEIVED),
        (b'{"p":1}', R, TS_RECEIVED),
        (b'{"p":1,"t":1752840000000}', R, TS_RECEIVED),  # ms: not a synced s clock
    ],
)
def test_ts_path(payload, ts, source):
    reading = GenericJsonParser(TOPIC, "p", ts_path="t").parse(TOPIC, payload, R)
    assert (reading.ts, reading.ts_source) == (ts, source)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"ENERGY":{}}',
        b'{"ENERGY":{"Power":null}}',
        b'{"ENERGY":[1,2]}',
        b'{"ENERGY":5}',
        b'{"Status":{"Power":1}}',
    ],
)
def test_frames_without_the_power_path(payload):
    assert code_of(GenericJsonParser(TOPIC, "ENERGY.Power"), payload) == "no_power"


def test_list_index_out_of_range_and_dict_with_digit_keys():
    parser = GenericJsonParser(TOPIC, "s.1")
    assert code_of(parser, b'{"s":[5]}') == "no_power"
    assert parser.parse(TOPIC, b'{"s":{"1":7}}', R).power_w == 7.0
    assert parser.parse(TOPIC, b'{"s":[5,8]}', R).power_w == 8.0


def test_topic_filter():
    parser = GenericJsonParser("tele/+/SENSOR")
    assert parser.parse("tele/saw/SENSOR", b"5", R).device_key == "tele/saw/SENSOR"
    assert code_of(parser, b"5", topic="tele/saw/STATE") == "foreign_topic"
    assert parser.subscriptions() == ["tele/+/SENSOR"]


@pytest.mark.parametrize(
    ("payload", "exc", "code"),
    [
        (b'"12"', InvalidValue, "not_a_number"),
        (b"true", InvalidValue, "not_a_number"),
        (b'{"power":"12"}', InvalidValue, "not_a_number"),
        (b'{"power":true}', InvalidValue, "not_a_number"),
        (b'{"power":NaN}', InvalidValue, "non_finite"),
        (b"Infinity", InvalidValue, "non_finite"),
        (b'{"power":-5}', InvalidValue, "negative_power"),
        (b'{"power":1e12}', InvalidValue, "absurd_power"),
        (b'{"power":1,"energy":-1}', InvalidValue, "negative_energy"),
        (b'{"power":1,"ts":"2024-01-01"}', InvalidValue, "invalid_ts"),
        (b"[1]", UnexpectedShape, "unexpected_shape"),
        (b"null", UnexpectedShape, "unexpected_shape"),
        (b"[", MalformedJson, "malformed_json"),
        (b"12 W", MalformedJson, "malformed_json"),
        (b"\xc3\x28", NotUtf8, "not_utf8"),
        (b"1" + b" " * 70_000, PayloadTooLarge, "too_large"),
        (b"[" * 10_000 + b"]" * 10_000, RejectedPayload, "too_deep"),
        (
            b'{"power":1,"x":' + b"[" * 40 + b"]" * 40 + b"}",
            RejectedPayload,
            "too_deep",
        ),
    ],
)
def test_rejections(payload, exc, code):
    parser = GenericJsonParser(TOPIC, energy_path="energy", ts_path="ts")
    assert code_of(parser, payload, exc) == code


def test_energy_only_from_the_payload_that_carries_it():
    parser = GenericJsonParser(TOPIC, energy_path="e.total", energy_scale=1000)
    first = parser.parse(TOPIC, b'{"power":5,"e":{"total":1.5}}', R)
    assert (first.power_w, first.energy_wh) == (5.0, 1500.0)
    for payload in (b'{"power":6}', b'{"power":6,"e":{}}', b'{"power":6,"e":null}'):
        reading = parser.parse(TOPIC, payload, R)
        assert (reading.power_w, reading.energy_wh) == (6.0, None)
    assert parser.parse(TOPIC, b"7", R).energy_wh is None  # a plain number
    assert parser.snapshot() == {}  # nothing held between payloads


def test_noise_and_limits():
    parser = GenericJsonParser(TOPIC, limits=Limits(max_power_w=500.0))
    assert parser.parse(TOPIC, b"-0.3", R).power_w == 0.0
    assert code_of(parser, b"501", InvalidValue) == "absurd_power"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"topic_filter": "a/#/b"},
        {"topic_filter": ""},
        {"topic_filter": "t", "power_path": ""},
        {"topic_filter": "t", "power_path": "a..b"},
        {"topic_filter": "t", "power_path": None},
        {"topic_filter": "t", "energy_scale": 0},
        {"topic_filter": "t", "energy_scale": "1000"},
    ],
)
def test_constructor_validates(kwargs):
    with pytest.raises(ValueError):
        GenericJsonParser(**kwargs)


# -- factory ---------------------------------------------------------------------


def test_meter_kinds_have_labels():
    assert set(METER_KINDS) == {"shelly_gen2", "shelly_gen1", "generic_json"}
    assert all(kind.label for kind in METER_KINDS.values())


def test_make_parser():
    gen2 = make_parser("shelly_gen2", prefix="shelly/ug/saw")
    assert isinstance(gen2, ShellyGen2Parser) and gen2.component == "pm1:0"
    sw = make_parser("shelly_gen2", prefix="p", component="switch:1", options={})
    assert sw.component == "switch:1"
    gen1 = make_parser("shelly_gen1", prefix="shellies/x", component=False)
    assert isinstance(gen1, ShellyGen1Parser) and gen1.component == "relay:0"
    limits = Limits(max_power_w=10.0)
    generic = make_parser(
        "generic_json",
        topic_filter=TOPIC,
        options={"power_path": "ENERGY.Power", "energy_path": False, "ts_path": ""},
        limits=limits,
    )
    assert isinstance(generic, GenericJsonParser) and generic.limits is limits
    assert generic.parse(TOPIC, b'{"ENERGY":{"Power":3}}', R).power_w == 3.0


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("tasmota",), {"prefix": "x"}, "unknown parser type 'tasmota'"),
        (("shelly_gen2",), {}, "needs a topic prefix"),
        (("shelly_gen1",), {"prefix": "a/+"}, "wildcards"),
        (("shelly_gen2",), {"prefix": "p", "options": {"x": 1}}, "takes no options"),
        (("generic_json",), {"prefix": "p"}, "needs a topic filter"),
        (("generic_json",), {"topic_filter": "t", "options": {"pwr": "a"}}, "pwr"),
        (("shelly_gen2",), {"prefix": "p", "component": "pm1"}, "pm1:0"),
    ],
)
def test_make_parser_errors_are_clear(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_parser(*args, **kwargs)


def test_subscriptions_for():
    assert subscriptions_for("shelly_gen2", prefix="a/b") == [
        "a/b/events/rpc",
        "a/b/status/+",
        "a/b/online",
    ]
    assert subscriptions_for("shelly_gen1", prefix="shellies/x") == ["shellies/x/#"]
    assert subscriptions_for("generic_json", topic_filter="t/+") == ["t/+"]
    for parser_type, kwargs in [
        ("nope", {"prefix": "a"}),
        ("generic_json", {"topic_filter": "a/#/b"}),
        ("shelly_gen2", {"topic_filter": "a"}),
    ]:
        with pytest.raises(ValueError):
            subscriptions_for(parser_type, **kwargs)


def test_make_parser_refuses_a_zero_option_instead_of_dropping_it():
    """0 is a value, not an empty field: energy_scale 0 is refused, not 1."""
    with pytest.raises(ValueError, match="energy_scale must be a positive number"):
        make_parser("generic_json", topic_filter="t", options={"energy_scale": 0})
