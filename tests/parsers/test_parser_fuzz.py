"""Hostile input: parse raises a ParseError or returns a sane Reading, always."""

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from ...parsers import (
    GenericJsonParser,
    Limits,
    ParseError,
    Reading,
    ShellyGen1Parser,
    ShellyGen2Parser,
    reply_route,
)
from .. import fixtures

SEEDS = [p.read_bytes() for p in fixtures.frame_files()]
LIMITS = Limits()
P = "shelly/ug/saw"
TOPICS = [
    f"{P}/events/rpc",
    f"{P}/status/pm1:0",
    f"{P}/status/switch:0",
    f"{P}/status",
    f"{P}/online",
    f"{P}/rpc",
    "owmqtt-1/rpc",
    f"{P}/relay/0/power",
    f"{P}/relay/0/energy",
    f"{P}/emeter/0/total",
    "tele/saw/SENSOR",
]
FAST = settings(max_examples=200, deadline=None)

NUMBERS = st.one_of(
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-1.0, -0.5, 0, 1e9, 1e10, 1e12, 100000, 100000.1, 10**400]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=20))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=8,
)
FIELDS = st.sampled_from(
    ["apower", "voltage", "current", "aenergy", "total", "errors", "id", "ts", "pm1:0"]
)
PLAUSIBLE = st.floats(min_value=-2.0, max_value=100_010.0)
SOME = st.one_of(PLAUSIBLE, PLAUSIBLE, NUMBERS, JSON)  # biased to valid numbers
COMPONENT = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "apower": SOME,
            "voltage": SOME,
            "current": SOME,
            "aenergy": st.one_of(st.fixed_dictionaries({}, optional={"total": SOME})),
            "errors": st.one_of(
                st.none(), st.lists(st.text(max_size=5), max_size=2), JSON
            ),
            "id": JSON,
        },
    ),
    st.dictionaries(
        st.one_of(FIELDS, st.text(max_size=6)),
        st.one_of(JSON, st.dictionaries(FIELDS, JSON, max_size=3)),
        max_size=4,
    ),
)


def parsers():
    return [
        ShellyGen2Parser(P),
        ShellyGen2Parser(P, "switch:0"),
        ShellyGen1Parser(P),
        ShellyGen1Parser(P, "emeter:0"),
        GenericJsonParser("tele/+/SENSOR", "ENERGY.Power", "ENERGY.Total", "ts"),
    ]


def check(parser, topic, payload, received_at=1_752_840_154.0):
    """The contract: a ParseError or a Reading whose numbers are all sane."""
    try:
        reading = parser.parse(topic, payload, received_at)
    except ParseError as exc:
        assert isinstance(exc.code, str) and exc.code
        return None
    assert isinstance(reading, Reading)
    if reading.power_w is not None:
        assert math.isfinite(reading.power_w)
        assert 0.0 <= reading.power_w <= LIMITS.max_power_w
        assert not reading.meter_errors
    if reading.energy_wh is not None:
        assert math.isfinite(reading.energy_wh) and reading.energy_wh >= 0.0
    for value in (reading.voltage_v, reading.current_a):
        assert value is None or math.isfinite(value)
    assert math.isfinite(reading.ts)
    assert all(isinstance(error, str) for error in reading.meter_errors)
    assert reading.online in (None, True, False)
    return reading


def notify(params, method="NotifyStatus"):
    frame = {"src": "shellyplugpmg3-1", "method": method, "params": params}
    return json.dumps(frame)


@FAST
@given(st.binary(max_size=300), st.sampled_from(TOPICS))
def test_random_bytes(payload, topic):
    for parser in parsers():
        check(parser, topic, payload)
    assert reply_route(payload) is None or isinstance(reply_route(payload), tuple)


@FAST
@given(JSON, st.sampled_from(TOPICS))
def test_random_json_values(value, topic):
    payload = json.dumps(value)
    for parser in parsers():
        check(parser, topic, payload)
        check(parser, topic, payload.encode())
    reply_route(payload)


@FAST
@given(
    st.lists(st.tuples(COMPONENT, st.one_of(NUMBERS, st.none())), max_size=4),
    st.sampled_from(["NotifyStatus", "NotifyFullStatus", "NotifyEvent", None]),
)
def test_random_components_in_notify_status(frames, method):
    parser = ShellyGen2Parser(P)
    for component, ts in frames:
        params = {"pm1:0": component} if ts is None else {"ts": ts, "pm1:0": component}
        check(parser, f"{P}/events/rpc", notify(params, method))
        check(parser, f"{P}/status/pm1:0", json.dumps(component))
        result = {"id": 0, **component}
        check(parser, "owmqtt-1/rpc", json.dumps({"id": 1, "result": result}))
    # Whatever was merged, a later plain delta still gives a sane reading.
    check(parser, f"{P}/events/rpc", notify({"ts": 1752840999.0, "pm1:0": {}}))


@FAST
@given(st.dictionaries(st.one_of(FIELDS, st.text(max_size=6)), JSON, max_size=6))
def test_random_params(params):
    for parser in parsers():
        check(parser, f"{P}/events/rpc", notify(params))


@FAST
@given(st.text(max_size=60), st.binary(max_size=40))
def test_random_topics(topic, payload):
    for parser in parsers():
        check(parser, topic, payload)
        check(
            parser, topic, b'{"method":"NotifyStatus","params":{"pm1:0":{"apower":1}}}'
        )


@FAST
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    st.sampled_from(TOPICS),
)
def test_mutated_fixtures(seed, mutations, topic):
    payload = bytearray(seed)
    for position, byte in mutations:
        if payload:
            payload[position % len(payload)] = byte
    for parser in parsers():
        check(parser, topic, bytes(payload))
        check(parser, topic, seed)


@FAST
@given(st.one_of(st.none(), st.integers(), st.floats(), st.lists(st.integers())))
def test_wrong_payload_types(payload):
    for parser in parsers():
        check(parser, f"{P}/events/rpc", payload)
        check(parser, f"{P}/relay/0/power", payload)
