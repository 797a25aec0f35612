"""A Gen2+ component is read by what the device sends, not by a fixed list.

Real published frames (tests/fixtures/shelly_captures/components.jsonl; the
REPORT of where each comes from is in each line's ``source`` and ``note``):
a 2PM in its cover profile (``cover:0``), an RGBWW PM in its CCT profile
(``cct:0``), ``rgb:0``, dimmers (``light:0``) are read the common way
(``apower``, ``aenergy.total``); a circuit breaker (``cb:0``), a voltmeter
or an input has no power: its frames are not readings, counted as such,
and its channel is no form error."""

import json
import pathlib

import pytest

from ...parsers import NotAReading, ShellyGen2Parser, make_parser, poll_request
from ...parsers.shelly_rpc import profile_of
from ...services.engine.batch import Batch
from ...services.engine.device import DeviceConfig
from ...services.engine.engine import Engine
from ...services.engine.types import DetectorConfig
from ...services.mqtt.inbound import InboundMessage

CAPTURES = (
    pathlib.Path(__file__).resolve().parents[1]
    / "fixtures"
    / "shelly_captures"
    / "components.jsonl"
)
ROWS = [json.loads(line) for line in CAPTURES.read_text().splitlines() if line]
R = 1_780_000_000.0
WITHOUT_POWER = {"cb", "voltmeter", "input"}


def prefix_of(row):
    topic = row["topic"]
    for tail in ("/events/rpc", "/owm-test/rpc"):
        if topic.endswith(tail):
            return topic[: -len(tail)]
    return topic.split("/status/")[0]


def power_in(row):
    """The apower the frame carries for its component, if any."""
    frame = json.loads(row["payload"])
    status = frame
    if "params" in frame:
        status = frame["params"].get(row["component"], {})
    elif "result" in frame:
        result = frame["result"]
        status = result.get(row["component"], result)
    return status.get("apower")


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['component']}:{r['topic']}")
def test_every_captured_component_frame_is_read_or_clearly_not(row):
    parser = ShellyGen2Parser(prefix_of(row), row["component"])
    kind = row["component"].split(":")[0]
    expected = power_in(row)
    try:
        reading = parser.parse(row["topic"], row["payload"].encode(), R)
    except NotAReading as exc:
        # Nothing metered in this frame: a delta without power, or a
        # component without metering.
        assert expected is None, row["note"]
        assert exc.code in ("no_power", "no_component", "rpc_result")
        return
    assert kind not in WITHOUT_POWER
    assert reading.power_w == float(expected)


def test_cover_cct_and_rgb_frames_give_their_power():
    def first(component, topic_part):
        return next(
            r for r in ROWS if r["component"] == component and topic_part in r["topic"]
        )

    cover = first("cover:0", "a803200mymac/status")
    parser = ShellyGen2Parser(prefix_of(cover), "cover:0")
    reading = parser.parse(cover["topic"], cover["payload"], R)
    assert (reading.power_w, reading.voltage_v) == (104.0, 231.4)
    # The 2PM's NotifyStatus carries only the power: a delta merged on.
    delta = first("cover:0", "RolloLinks")
    moving = ShellyGen2Parser("shellies/RolloLinks", "cover:0")
    assert moving.parse(delta["topic"], delta["payload"], R).power_w == 85.0
    cct = first("cct:0", "ece334f91f6c/status")
    lamp = ShellyGen2Parser(prefix_of(cct), "cct:0")
    reading = lamp.parse(cct["topic"], cct["payload"], R)
    assert reading.power_w == 0.0 and reading.energy_wh == 90.465
    rgb = first("rgb:0", "ece334f91f6c/status")
    strip = ShellyGen2Parser(prefix_of(rgb), "rgb:0")
    assert strip.parse(rgb["topic"], rgb["payload"], R).power_w > 0


def test_a_circuit_breaker_is_no_form_error_and_gives_no_reading():
    make_parser("shelly_gen2", prefix="shellypro2cb-8813bfddc328", component="cb:0")
    full = next(r for r in ROWS if r["note"].startswith("ADAPTED: the real status"))
    parser = ShellyGen2Parser("shellypro2cb-8813bfddc328", "cb:0")
    with pytest.raises(NotAReading) as caught:
        parser.parse(full["topic"], full["payload"], R)
    assert caught.value.code == "no_power"


def test_each_component_is_polled_in_its_own_namespace():
    for component, method in [
        ("cover:0", "Cover.GetStatus"),
        ("cct:0", "CCT.GetStatus"),
        ("rgbw:1", "RGBW.GetStatus"),
        ("rgb:0", "RGB.GetStatus"),
        ("light:2", "Light.GetStatus"),
        ("pm1:0", "PM1.GetStatus"),
    ]:
        _topic, payload = poll_request(component, 7, "p/owm")
        assert json.loads(payload)["method"] == method
    for bad in ("Cover:0", "cover", "1x:0", "em-1:0"):
        with pytest.raises(ValueError):
            profile_of(bad)


def test_the_engine_counts_a_breakers_frames_as_not_readings():
    engine = Engine()
    engine.add_connection(1, "owm-test", discovery=False)
    engine.connection_up(1, session_present=False)
    batch = Batch()
    rows = [r for r in ROWS if r["component"] in ("cb:0", "cover:0")]
    prefixes = sorted({prefix_of(r) for r in rows})
    for n, prefix in enumerate(prefixes, 1):
        component = next(r["component"] for r in rows if prefix_of(r) == prefix)
        engine.upsert_device(
            DeviceConfig(
                id=n,
                name=prefix,
                connection_id=1,
                company_id=None,
                parser_type="shelly_gen2",
                topic_prefix=prefix,
                topic_pattern=None,
                component=component,
                detector=DetectorConfig(),
                poll_interval_s=0,
            ),
            batch,
        )
    for mid, row in enumerate(rows, 1):
        if row["topic"].endswith("/owm-test/rpc"):
            continue  # answers no request of ours: refused elsewhere
        engine.handle(
            1,
            InboundMessage(
                row["topic"], row["payload"].encode(), 1, mid, False, False, R, 1
            ),
            batch,
        )
    breakers = [r for r in rows if r["component"] == "cb:0"]
    covers = [
        r
        for r in rows
        if r["component"] == "cover:0" and "/owm-test/" not in r["topic"]
    ]
    assert batch.stats[1]["ignored"] == len(breakers)
    assert batch.stats[1]["readings"] == len(covers)
    assert batch.stats[1]["rejected"] == 0
