"""Every real Shelly payload of the conformance set, with its outcome.

One explicit row per line of ``tests/fixtures/shelly_captures/payloads.jsonl``:
which parser reads it (kind, prefix, component, topic fed) and what must come
out (the reading's values, or the exact NotAReading / RejectedPayload code)
when the line is fed alone to a fresh parser. ``IN_FILE_ORDER`` says what
changes when each device's lines go through one parser in file order (held
status, the learned clock, stale frames).
"""

import contextlib

import pytest

from ...parsers import (
    TS_DEVICE,
    TS_OFFSET,
    TS_RECEIVED,
    NotAReading,
    ParseError,
    ShellyGen1Parser,
    ShellyGen2Parser,
)
from .. import fixtures

LINES = fixtures.captures()
R = 1_800_000_000.0  # receive time used for every line


def ok(power, energy=None, voltage=None, current=None, **extra):
    want = {"power_w": power, "energy_wh": energy, "voltage_v": voltage}
    want.update(current_a=current, ts=R, ts_source=TS_RECEIVED, source="status")
    want.update(online=None, meter_errors=())
    want.update(extra)
    return want


def delta(power, ts, key, energy=None, voltage=None, current=None):
    return ok(power, energy, voltage, current, ts=ts, ts_source=TS_DEVICE,
              source="notify_status", device_key=key)  # fmt: skip


def online(flag):
    return ok(None, online=flag, source="online")


def no(code):
    return ("not", code)


G2, G1 = "gen2", "gen1"
PRO4 = "shellypro4pm-f008d1d8b8b8"
PLUS = "shellies/plus1pm"
PLUS_SRC = "shellyplus1pm-4417939341dc"
MINI = "shellypmminig3-84fce63957f4"
EVCC = "shellypmminig3-84fce638d818"
PRO1 = "shellypro1pm-30c6f78bb4d8"
ERRORS = (
    "power_meter_failure",
    "out_of_range:voltage",
    "out_of_range:current",
    "out_of_range:apower",
    "out_of_range:aprtpower",
)

# line: (parser kind, prefix, component, topic fed or None = the line's topic, want)
TABLE = {
    0: (G2, "shelly1pmminig3-5432044edbc0", "switch:0", None,
        delta(11.5, 1788945292.88, "shelly1pmminig3-5432044edbc0", current=0.071)),
    1: (G2, "shelly1pmminig3-5432044edbc0", "switch:0", None,
        ok(11.5, 152669.987, 240.3, 0.073)),
    2: (G2, "ShellyLichtGarten", "switch:0", None, no("no_power")),
    3: (G2, "ShellyLichtGarten", "switch:0", None, ok(0.0, 2690.73, 238.3, 0.0)),
    4: (G2, "shellyplus1pm-3c61057263dc", "switch:0", None,
        delta(579.0, 1657970346.65, "shellyplus1pm-3c61057263dc")),
    # Alone a reading; after line 4 (2 s newer) it is stale: see IN_FILE_ORDER.
    5: (G2, "shellyplus1pm-3c61057263dc", "switch:0", None,
        delta(639.2, 1657970344.65, "shellyplus1pm-3c61057263dc")),
    6: (G2, "Shelly-bkw", "switch:0", None, ok(639.2, 1039.106, 223.2, 2.23)),
    7: (G2, "shelly1pmmini-Solarthermie", "switch:0", None,
        ok(3.8, 26064.252, 231.0, 0.03)),
    8: (G2, "shellyplus2pm-Einfahrt", "switch:0", None, online(True)),
    9: (G2, "shellyplus1pm-4417939553c4", "switch:0", None, online(False)),
    10: (G2, "shellypro2pm-30c6f7850a64", "switch:0", None, online(False)),
    11: (G2, "shellyplugsg3-8cbfea9585e8", "switch:0", None, no("rpc_request")),
    # Reply to Switch.Set ({"was_on": true}) is not a status: state untouched.
    12: (G2, "shellyplugsg3-8cbfea9585e8", "switch:0", None, no("rpc_result")),
    13: (G2, "shellyprodm2pm-08f9e0e48c18", "light:0", None, no("no_power")),
    14: (G2, "shellyprodm2pm-08f9e0e48c18", "light:0", None, no("other_topic")),
    # A counter before any power: a reading without power (the engine shows
    # the counter, the state machine is not fed).
    15: (G2, "shellyplus1pm-a8032abe2f18", "switch:0", None,
         delta(None, 1632666420.17, "shellyplus1pm-a8032abe2f18", 0.0)),
    16: (G2, "shellyplus1pm-a8032abe2f18", "switch:0", None,
         ok(0.0, 0.0, 240.873, None)),
    17: (G2, PLUS, "switch:0", None, no("no_component")),
    18: (G2, PLUS, "switch:0", None, online(True)),
    19: (G2, PLUS, "switch:0", None, no("no_power")),
    20: (G2, PLUS, "switch:0", None, ok(0.0, 0.0, 232.7, 0.0)),
    21: (G2, PLUS, "switch:0", None, delta(None, 1661517421.44, PLUS_SRC, 0.0)),
    22: (G2, PLUS, "switch:0", None, no("no_power")),
    23: (G2, PLUS, "switch:0", None, online(False)),
    24: (G1, "shellies/shelly1", "relay:0", None, no("other_topic")),
    25: (G1, "shellies/shelly1", "relay:0", None, no("foreign_topic")),
    26: (G1, "shellies/shellies/shellyem3", "emeter:0", None, ok(0.0)),
    27: (G1, "shellies/shellies/shellyem3", "emeter:0", None, no("other_topic")),
    28: (G2, "shellyplus1-441793ab3fb4", "switch:0", None, no("no_power")),
    29: (G2, "shellyplus1-441793ab3fb4", "switch:0", None, no("no_power")),
    30: (G2, "shellyplus1-08b61fd141e8", "switch:0", None, no("no_power")),
    31: (G2, "shelly1minig3-54320464a1d0", "switch:0", None, no("notify_event")),
    32: (G2, "shellyplus1-08b61fd9333c", "switch:0", None, no("rpc_error")),
    33: (G2, "shelly/ug/heizraum/trockner", "pm1:0", None,
         delta(27.0, 1783004880.01, "shellyplugpmg3-907069531520", 1.0, 233.3, 0.123)),
    34: (G2, "shelly/ug/heizraum/trockner", "pm1:0", None, no("no_component")),
    # HTTP Shelly.GetStatus objects, fed as a whole-device <prefix>/status.
    35: (G2, EVCC, "pm1:0", f"{EVCC}/status", ok(1780.1, 3551.682, 239.9, 7.434)),
    36: (G2, EVCC, "pm1:0", None, ok(1780.1, 3551.682, 239.9, 7.434)),
    37: (G2, PRO1, "switch:0", f"{PRO1}/status", ok(47.11, 5.125, 232.0, 0.0)),
    38: (G2, MINI, "pm1:0", None, ok(4.4, 73112.963, 234.5, 0.043)),
    39: (G2, MINI, "pm1:0", None, ok(4.4, 42291.09, 229.8, 0.046)),
    40: (G2, MINI, "pm1:0", None, ok(5.4, 509.289, 234.2, 0.057)),
    # A failing meter: errors reported, no value of that frame trusted.
    41: (G2, "shellypmminig3-<mac>", "pm1:0", None, ok(None, meter_errors=ERRORS)),
    42: (G2, PRO4, "switch:0", None, no("no_power")),
    43: (G2, PRO4, "switch:0", None, no("no_component")),
}  # fmt: skip


def offset(want, ts):
    """``want`` on the device clock learned from an earlier line (ts)."""
    return dict(want, ts=ts, ts_source=TS_OFFSET)


# line: want, when the earlier lines of the same (kind, prefix, component) in
# file order went through the same parser first; every other line as in TABLE.
IN_FILE_ORDER = {
    # A status topic after a delta of the same device: on its clock.
    1: offset(ok(11.5, 152669.987, 240.3, 0.073), 1788945292.88),
    3: offset(ok(0.0, 2690.73, 238.3, 0.0), 1788945300.02),
    # Device time 2 s older than line 4, already merged: an out-of-order
    # frame, never merged (its 639.2 W must not come back with later deltas).
    5: no("stale"),
    16: offset(ok(0.0, 0.0, 240.873, None), 1632666420.17),
    20: offset(ok(0.0, 0.0, 232.7, 0.0), 1661517385.44),
    # After the status of line 20 the power is known: deltas without apower
    # hold it; the fresh total of line 21 is sent, line 22 has none.
    21: delta(0.0, 1661517421.44, PLUS_SRC, 0.0, 232.7, 0.0),
    22: delta(0.0, 1661517432.85, PLUS_SRC, None, 232.7, 0.0),
    23: offset(online(False), 1661517432.85),
}


def make(kind, prefix, component):
    cls = ShellyGen2Parser if kind == G2 else ShellyGen1Parser
    return cls(prefix, component)


def test_table_covers_every_line():
    assert len(LINES) == 44
    assert sorted(TABLE) == list(range(len(LINES)))


def check(parser, index, want):
    """Feed line ``index`` to ``parser``; the outcome must be ``want``."""
    line = LINES[index]
    kind, prefix, component, topic, _ = TABLE[index]
    topic = topic or line["topic"]
    if not line["topic"].startswith("HTTP"):
        assert topic == line["topic"]
    payload = line["payload"].encode("utf-8")
    if isinstance(want, tuple):
        with pytest.raises(NotAReading) as info:
            parser.parse(topic, payload, R)
        assert info.value.code == want[1], (index, info.value.detail)
        return
    reading = parser.parse(topic, payload, R)
    want = dict(want)
    want.setdefault("device_key", prefix)
    got = {name: getattr(reading, name) for name in want}
    assert got == want, index
    assert reading.received_at == R


@pytest.mark.parametrize("index", sorted(TABLE))
def test_line(index):
    kind, prefix, component, _, want = TABLE[index]
    check(make(kind, prefix, component), index, want)


def test_lines_in_file_order_through_one_parser_per_device():
    parsers = {}
    for index in sorted(TABLE):
        kind, prefix, component, _, want = TABLE[index]
        key = (kind, prefix, component)
        parser = parsers.setdefault(key, make(*key))
        check(parser, index, IN_FILE_ORDER.get(index, want))
    assert len(parsers) == 24


def test_real_sequence_new_delta_stale_delta_then_a_delta_without_power():
    """Lines 4 then 5 (2 s older): the stale 639.2 W never comes back."""
    parser = ShellyGen2Parser("shellyplus1pm-3c61057263dc", "switch:0")
    new = parser.parse(LINES[4]["topic"], LINES[4]["payload"], R)
    assert (new.power_w, new.ts) == (579.0, 1657970346.65)
    before = parser.snapshot()
    with pytest.raises(NotAReading) as info:
        parser.parse(LINES[5]["topic"], LINES[5]["payload"], R + 0.1)
    assert info.value.code == "stale"
    assert parser.snapshot() == before
    later = LINES[4]["payload"].replace('"apower":579.0', '"voltage":231.2')
    later = later.replace("1657970346.65", "1657970348.65")
    reading = parser.parse(LINES[4]["topic"], later, R + 2)
    assert (reading.power_w, reading.voltage_v, reading.ts) == (
        579.0,
        231.2,
        1657970348.65,
    )


@pytest.mark.parametrize("index", range(len(LINES)))
@pytest.mark.parametrize("component", ["pm1:0", "switch:0", "light:0", "relay:0"])
def test_any_parser_on_any_line_only_raises_parse_errors(index, component):
    line = LINES[index]
    prefix = TABLE[index][1]
    topics = [line["topic"], f"{prefix}/status", f"{prefix}/events/rpc", "x/rpc"]
    for topic in topics:
        if component == "relay:0":
            parsers = [ShellyGen1Parser(prefix, component)]
        else:
            parsers = [ShellyGen2Parser(prefix, component)]
        for parser in parsers:
            # Anything but a ParseError (the parsers' one contract) fails here.
            with contextlib.suppress(ParseError):
                parser.parse(topic, line["payload"], R)


def test_real_sequence_voltage_energy_and_output_deltas_keep_power():
    """Lines 20, 19, 21, 22 of one device: status, then deltas without power."""
    parser = ShellyGen2Parser(PLUS, "switch:0")
    first = parser.parse(LINES[20]["topic"], LINES[20]["payload"], R)
    assert (first.power_w, first.voltage_v, first.ts_source) == (
        0.0,
        232.7,
        TS_RECEIVED,
    )
    volt = parser.parse(LINES[19]["topic"], LINES[19]["payload"], R + 1)
    # The counter (0.0 from line 20) is held, not re-sent without a fresh total.
    assert (volt.power_w, volt.voltage_v, volt.energy_wh) == (0.0, 232.7, None)
    assert (volt.ts, volt.ts_source, volt.device_key) == (
        1661517385.44,
        TS_DEVICE,
        PLUS_SRC,
    )
    assert parser.clock_offset == pytest.approx(1661517385.44 - (R + 1))
    energy = parser.parse(LINES[21]["topic"], LINES[21]["payload"], R + 37)
    assert (energy.power_w, energy.energy_wh, energy.ts) == (0.0, 0.0, 1661517421.44)
    output = parser.parse(LINES[22]["topic"], LINES[22]["payload"], R + 48)
    assert (output.power_w, output.energy_wh, output.ts) == (0.0, None, 1661517432.85)
    # Online after learning the offset lands on the device clock.
    back = parser.parse(LINES[18]["topic"], LINES[18]["payload"], R + 50)
    assert back.ts == pytest.approx(1661517385.44 - 1 + 50)
    assert (back.ts_source, back.online) == (TS_OFFSET, True)


def test_real_sequence_status_then_delta_holds_but_does_not_resend_energy():
    """Lines 1 then 0 (7 ms apart in the log): the delta holds the total."""
    parser = ShellyGen2Parser("shelly1pmminig3-5432044edbc0", "switch:0")
    status = parser.parse(LINES[1]["topic"], LINES[1]["payload"], R)
    assert status.energy_wh == 152669.987
    reading = parser.parse(LINES[0]["topic"], LINES[0]["payload"], R)
    assert (reading.power_w, reading.current_a) == (11.5, 0.071)
    assert (reading.energy_wh, reading.voltage_v) == (None, 240.3)
    assert parser.snapshot()["status"]["aenergy"] == {"total": 152669.987}


def test_switch_set_reply_does_not_touch_the_held_status():
    parser = ShellyGen2Parser("shellyplugsg3-8cbfea9585e8", "switch:0")
    parser.parse(
        "shellyplugsg3-8cbfea9585e8/status/switch:0", b'{"id":0,"apower":12.5}', R
    )
    with pytest.raises(NotAReading):
        parser.parse(LINES[12]["topic"], LINES[12]["payload"], R)
    assert parser.snapshot()["status"] == {"apower": 12.5}
