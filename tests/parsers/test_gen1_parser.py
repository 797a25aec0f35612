"""ShellyGen1Parser: plain numeric topics, watt-minutes, held values."""

import pytest

from ...parsers import (
    TS_RECEIVED,
    InvalidValue,
    NotAReading,
    NotUtf8,
    PayloadTooLarge,
    RejectedPayload,
    ShellyGen1Parser,
)
from ...parsers.gen1_parser import subscriptions
from .. import fixtures

PLUG = "shellies/shellyplug-s-7c87ce65a1b2"
EM3 = "shellies/shellies/shellyem3"  # a custom id with a slash, as captured
R = 1_752_840_154.0


fixture = fixtures.frame


def code_of(parser, topic, payload, exc=NotAReading):
    with pytest.raises(exc) as info:
        parser.parse(topic, payload, R)
    return info.value.code


def test_relay_power_fixture():
    parser = ShellyGen1Parser(PLUG)
    payload = fixture("shellyplug-s_fw1.14.0_relay_0_power.txt")
    reading = parser.parse(f"{PLUG}/relay/0/power", payload, R)
    assert (reading.power_w, reading.energy_wh) == (123.45, None)
    assert (reading.ts, reading.ts_source, reading.received_at) == (R, TS_RECEIVED, R)
    assert (reading.device_key, reading.source) == (PLUG, "status")


def test_relay_energy_is_watt_minutes_and_power_is_held():
    parser = ShellyGen1Parser(PLUG, "relay:0")
    energy = fixture("shellyplug-s_fw1.14.0_relay_0_energy.txt")
    # Before any power: a reading with the counter alone.
    first = parser.parse(f"{PLUG}/relay/0/energy", energy, R)
    assert (first.power_w, first.energy_wh) == (None, pytest.approx(7404 / 60))
    assert parser.snapshot()["energy_wh"] == pytest.approx(7404 / 60)
    # A power frame carries no counter: the held one is no new sample.
    power = parser.parse(f"{PLUG}/relay/0/power", b"10.5", R)
    assert (power.power_w, power.energy_wh) == (10.5, None)
    again = parser.parse(f"{PLUG}/relay/0/energy", b"7464", R + 30)
    assert (again.power_w, again.energy_wh, again.ts) == (10.5, 124.4, R + 30)
    later = parser.parse(f"{PLUG}/relay/0/power", b"11", R + 31)
    assert (later.power_w, later.energy_wh) == (11.0, None)
    assert parser.snapshot() == {"power_w": 11.0, "energy_wh": 124.4}


def test_roller_channel_fixtures():
    """A 2.5 in roller mode: power in W, its counter in watt-minutes."""
    shutter = "shellies/shellyswitch25-98cdac1f2e3d"
    parser = ShellyGen1Parser(shutter, "roller:0")
    power = fixture("shellyswitch25_fw1.14.0_roller_0_power.txt")
    energy = fixture("shellyswitch25_fw1.14.0_roller_0_energy.txt")
    assert parser.parse(f"{shutter}/roller/0/power", power, R).power_w == 482.77
    reading = parser.parse(f"{shutter}/roller/0/energy", energy, R + 1)
    assert (reading.power_w, reading.energy_wh) == (482.77, 19860 / 60)
    assert code_of(parser, f"{shutter}/relay/0/power", b"1.0") == "other_topic"
    with pytest.raises(ValueError, match="relay:N, roller:N or emeter:N"):
        ShellyGen1Parser(shutter, "light:0")


def test_emeter_channel_fixtures():
    parser = ShellyGen1Parser("shellies/shellyem3-ecfabc", "emeter:1")
    power = fixture("shellyem3_fw1.14.0_emeter_1_power.txt")
    total = fixture("shellyem3_fw1.14.0_emeter_1_total.txt")
    assert parser.parse(
        "shellies/shellyem3-ecfabc/emeter/1/power", power, R
    ).power_w == (412.8)
    reading = parser.parse("shellies/shellyem3-ecfabc/emeter/1/total", total, R)
    assert (reading.power_w, reading.energy_wh) == (412.8, 12345.6)
    power = parser.parse("shellies/shellyem3-ecfabc/emeter/1/power", b"400", R)
    assert (power.power_w, power.energy_wh) == (400.0, None)
    other = "shellies/shellyem3-ecfabc/emeter/0/power"
    assert code_of(parser, other, b"1.0") == "other_topic"


def test_doubled_shellies_prefix_from_the_capture():
    parser = ShellyGen1Parser(EM3, "emeter:0")
    assert parser.parse(f"{EM3}/emeter/0/power", b"0.00", R).power_w == 0.0


@pytest.mark.parametrize(
    ("topic", "code"),
    [
        (f"{PLUG}/relay/0", "other_topic"),
        (f"{PLUG}/relay/1/power", "other_topic"),
        (f"{PLUG}/emeter/0/power", "other_topic"),
        (f"{PLUG}/temperature", "other_topic"),
        ("shellies/announce", "foreign_topic"),
        ("shellies/shellyplug-s-other/relay/0/power", "foreign_topic"),
    ],
)
def test_topics_without_readings(topic, code):
    assert code_of(ShellyGen1Parser(PLUG), topic, b"on") == code


@pytest.mark.parametrize(("payload", "flag"), [(b"true", True), (b"false\n", False)])
def test_online(payload, flag):
    reading = ShellyGen1Parser(PLUG).parse(f"{PLUG}/online", payload, R)
    assert (reading.online, reading.power_w, reading.source) == (flag, None, "online")


@pytest.mark.parametrize(
    ("payload", "exc", "code"),
    [
        (b"on", InvalidValue, "not_a_number"),
        (b"nan", InvalidValue, "not_a_number"),
        (b"NaN", InvalidValue, "non_finite"),
        (b"inf", InvalidValue, "not_a_number"),
        (b"1_000", InvalidValue, "not_a_number"),
        (b"true", InvalidValue, "not_a_number"),
        (b'"12"', InvalidValue, "not_a_number"),
        (b"", InvalidValue, "not_a_number"),
        (b"-5", InvalidValue, "negative_power"),
        (b"1e12", InvalidValue, "absurd_power"),
        (b"\xff", NotUtf8, "not_utf8"),
        (b"1" * 70_000, PayloadTooLarge, "too_large"),
        (None, RejectedPayload, "unexpected_shape"),
    ],
)
def test_bad_power_values(payload, exc, code):
    parser = ShellyGen1Parser(PLUG)
    parser.parse(f"{PLUG}/relay/0/power", b"3", R)
    assert code_of(parser, f"{PLUG}/relay/0/power", payload, exc) == code
    assert parser.snapshot() == {"power_w": 3.0, "energy_wh": None}


def test_noise_whitespace_and_negative_energy():
    parser = ShellyGen1Parser(PLUG)
    assert parser.parse(f"{PLUG}/relay/0/power", b" -0.42\n", R).power_w == 0.0
    topic = f"{PLUG}/relay/0/energy"
    assert code_of(parser, topic, b"-1", InvalidValue) == "negative_energy"


def test_snapshot_restore():
    parser = ShellyGen1Parser(PLUG)
    parser.parse(f"{PLUG}/relay/0/power", b"20", R)
    fresh = ShellyGen1Parser(PLUG)
    fresh.restore(parser.snapshot())
    reading = fresh.parse(f"{PLUG}/relay/0/energy", b"60", R)
    assert (reading.power_w, reading.energy_wh) == (20.0, 1.0)
    fresh.restore({"power_w": "x", "energy_wh": -1})
    assert fresh.snapshot() == {"power_w": None, "energy_wh": None}
    fresh.restore(None)
    assert fresh.clock_offset is None


def test_subscriptions_and_constructor():
    assert subscriptions(PLUG) == [f"{PLUG}/#"]
    assert ShellyGen1Parser(PLUG).subscriptions() == [f"{PLUG}/#"]
    for args in [
        (PLUG, "switch:0"),
        (PLUG, "relay"),
        ("a/+", "relay:0"),
        ("", "relay:0"),
    ]:
        with pytest.raises(ValueError):
            ShellyGen1Parser(*args)
