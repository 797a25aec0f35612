"""Hypothesis fuzz of the whole on_message path, without Odoo.

``Engine.handle`` gets random topics (unicode, empty levels, very long),
random payloads (bytes, JSON, real frames mutated), random packet ids and DUP
flags, interleaved with watchdog ticks, clock jumps, broker outages and
flushes.  Whatever arrives: it never raises, every message lands in exactly
one counter, a batch stays bounded, and every device's state machine keeps
its invariants (the numbers the flush writes are finite and consistent).
"""

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ....services.engine.batch import Batch, WriteResult
from ....services.engine.device import DeviceConfig
from ....services.engine.engine import MAX_RAW_PROBLEM_ROWS, Engine
from ....services.engine.types import DetectorConfig, State
from ....services.mqtt.inbound import InboundMessage
from ... import fixtures
from .test_engine import op_pair

T0 = 1_780_000_000.0
CLIENT_ID = "owm-fuzz"
# Counters a message ends in: exactly one of them (plus "received").
BUCKETS = (
    "duplicates",
    "unmatched",
    "rate_limited",
    "ignored",
    "stale",
    "rejected",
    "readings",
)
END_REASONS = {"power_drop", "timeout", "offline", "manual"}


def _devices():
    base = {
        "connection_id": 1,
        "company_id": 1,
        "topic_pattern": None,
        "detector": DetectorConfig(start_debounce_s=1.0, stop_debounce_s=3.0),
        "poll_interval_s": 5.0,
    }
    rows = [
        (1, "shelly_gen2", "shellypmminig3-aabbccddeeff", "pm1:0", {}),
        (2, "shelly_gen2", "shellies/plus1pm", "switch:0", {"log_raw": True}),
        (3, "shelly_gen2", "shelly/ug/heizraum/trockner", "pm1:0", {"max_msg_rate": 3}),
        (4, "shelly_gen1", "shellies/shellyplug-s-1", "relay:0", {}),
        (
            5,
            "generic_json",
            None,
            None,
            {
                "topic_pattern": "tele/+/SENSOR",
                "options": {
                    "json_power_path": "ENERGY.Power",
                    "json_energy_path": "ENERGY.Total",
                },
                "log_raw": True,
            },
        ),
    ]
    out = []
    for dev_id, parser, prefix, component, extra in rows:
        values = dict(
            base,
            id=dev_id,
            name=f"Machine {dev_id}",
            parser_type=parser,
            topic_prefix=prefix,
            component=component,
        )
        values.update(extra)
        out.append(DeviceConfig(**values))
    return out


DEVICES = _devices()
LOG_RAW = {cfg.id for cfg in DEVICES if cfg.log_raw}
DEVICE_TOPICS = [
    "shellypmminig3-aabbccddeeff/events/rpc",
    "shellypmminig3-aabbccddeeff/status/pm1:0",
    "shellypmminig3-aabbccddeeff/online",
    "shellypmminig3-aabbccddeeff/rpc",
    "shellies/plus1pm/events/rpc",
    "shellies/plus1pm/status/switch:0",
    "shellies/plus1pm/online",
    "shelly/ug/heizraum/trockner/events/rpc",
    "shellies/shellyplug-s-1/relay/0/power",
    "shellies/shellyplug-s-1/relay/0/energy",
    "shellies/shellyplug-s-1/relay/0",
    "tele/saw/SENSOR",
    "tele//SENSOR",
    f"{CLIENT_ID}/rpc",
    f"shellypmminig3-aabbccddeeff/{CLIENT_ID}/rpc",
]


def _seed_frames():
    frames = [
        (item["topic"], item["payload"].encode())
        for item in fixtures.captures()
        if "payload" in item and "/" in item.get("topic", "")
    ]
    frames.extend(
        (DEVICE_TOPICS[0], path.read_bytes()) for path in fixtures.frame_files()
    )
    return frames


SEEDS = _seed_frames()

TOPIC_LEVEL = st.one_of(
    st.text(max_size=12).filter(lambda s: "/" not in s),
    st.sampled_from(["", "+", "#", "$SYS", "events", "rpc", "status", "pm1:0"]),
)
TOPICS = st.one_of(
    st.sampled_from(DEVICE_TOPICS),
    st.sampled_from([t for t, _ in SEEDS] or DEVICE_TOPICS),
    st.lists(TOPIC_LEVEL, min_size=1, max_size=6).map("/".join),
    st.builds(
        lambda p, n: p + "/" + "ü€😀x" * n,
        st.sampled_from(DEVICE_TOPICS),
        st.integers(1, 3000),
    ),
    st.just(""),
)
NUMBERS = st.one_of(
    st.integers(-(10**6), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1e9, 1e10 - 1, 1e10, 1e12, -1e12, 10**400, 5e-324]),
)
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=10,
)


def _shelly(ts, power, component, method, energy):
    comp = {"apower": power}
    if energy is not None:
        comp["aenergy"] = {"total": energy}
    return {
        "src": "shellypmminig3-aabbccddeeff",
        "dst": "x/events",
        "method": method,
        "params": {"ts": ts, component: comp},
    }


SHELLY = st.builds(
    _shelly,
    st.one_of(
        st.integers(0, 30).map(lambda i: T0 + i),  # repeats: same-instant frames
        st.floats(T0 - 100, T0 + 1000),
        NUMBERS,
        st.none(),
    ),
    st.one_of(st.floats(-5, 3000), NUMBERS, JSON),
    st.sampled_from(["pm1:0", "switch:0", "pm1:1"]),
    st.sampled_from(["NotifyStatus", "NotifyFullStatus", "NotifyEvent", "Other"]),
    st.one_of(st.none(), st.floats(0, 1e6), NUMBERS),
)


def _mutate(data, cut, flips):
    data = bytearray(data[:cut] if cut else data)
    for pos, value in flips:
        if data:
            data[pos % len(data)] = value
    return bytes(data)


MUTATED = st.builds(
    _mutate,
    st.sampled_from([p for _, p in SEEDS]),
    st.integers(0, 800),
    st.lists(st.tuples(st.integers(0, 10**4), st.integers(0, 255)), max_size=4),
)


def _dumps(value):
    return json.dumps(value, allow_nan=True).encode()


PAYLOADS = st.one_of(
    st.binary(max_size=200),
    JSON.map(_dumps),
    SHELLY.map(_dumps),
    SHELLY.map(_dumps),
    MUTATED,
    st.sampled_from(
        [
            b"",
            b"true",
            b"false",
            b"NaN",
            b"-Infinity",
            b"1e999",
            b"[" * 10_000 + b"]" * 10_000,
            b'{"a":' * 5000 + b"1" + b"}" * 5000,
            b'{"params": {"ts": 1e9}}' + b" " * 70_000,
        ]
    ),
    st.floats(allow_nan=True).map(lambda f: repr(f).encode()),
)


PLAUSIBLE_TS = st.integers(0, 40).map(lambda i: T0 + i)  # repeats are likely
PLAUSIBLE_W = st.one_of(st.sampled_from([0.0, 5.0, 50.0, 500.0]), st.floats(-1, 3000))


@st.composite
def plausible(draw):
    """A frame a configured meter could send, so the state machines move."""
    kind = draw(st.sampled_from(["gen2", "gen2", "gen1", "generic", "online"]))
    watts = draw(PLAUSIBLE_W)
    energy = draw(st.one_of(st.none(), st.floats(0, 1e5)))
    if kind == "gen2":
        topic, component = draw(
            st.sampled_from(
                [
                    ("shellypmminig3-aabbccddeeff/events/rpc", "pm1:0"),
                    ("shellies/plus1pm/events/rpc", "switch:0"),
                    ("shelly/ug/heizraum/trockner/events/rpc", "pm1:0"),
                ]
            )
        )
        frame = _shelly(draw(PLAUSIBLE_TS), watts, component, "NotifyStatus", energy)
        return topic, _dumps(frame)
    if kind == "gen1":
        return "shellies/shellyplug-s-1/relay/0/power", repr(watts).encode()
    if kind == "generic":
        return "tele/saw/SENSOR", _dumps({"ENERGY": {"Power": watts, "Total": energy}})
    prefix = draw(st.sampled_from(["shellypmminig3-aabbccddeeff", "shellies/plus1pm"]))
    return f"{prefix}/online", draw(st.sampled_from([b"true", b"false"]))


@st.composite
def messages(draw):
    topic, payload = draw(
        st.one_of(st.tuples(TOPICS, PAYLOADS), plausible(), plausible())
    )
    return InboundMessage(
        topic=topic,
        payload=payload,
        qos=draw(st.sampled_from([0, 1])),
        mid=draw(st.integers(1, 65535)),
        dup=draw(st.booleans()),
        retain=draw(st.booleans()),
        received_at=T0 + draw(st.floats(-5, 5)),
        generation=1,
    )


STEPS = st.lists(
    st.one_of(
        messages().map(lambda m: ("msg", m)),
        messages().map(lambda m: ("msg", m)),
        messages().map(lambda m: ("msg", m)),
        st.floats(0, 60).map(lambda dt: ("advance", dt)),
        st.just(("tick", None)),
        st.just(("flush", None)),
        st.just(("down", None)),
        st.booleans().map(lambda present: ("up", present)),
    ),
    max_size=40,
)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _core(discovery):
    clock = Clock()
    core = Engine(clock=clock)
    core.add_connection(1, CLIENT_ID, discovery=discovery, committed_mids=[1, 2, 3])
    core.connection_up(1, session_present=True)
    batch = Batch()
    for cfg in DEVICES:
        core.upsert_device(cfg, batch)
    return core, clock, batch


def _finite(value):
    return value is None or (isinstance(value, float | int) and math.isfinite(value))


def check_summary(summary, closed):
    assert summary.standby_duration_s >= -1e-6
    assert summary.working_duration_s >= -1e-6
    assert summary.energy_wh >= 0.0 and math.isfinite(summary.energy_wh)
    assert math.isfinite(summary.start_time)
    if closed:
        assert summary.end_reason in END_REASONS
        assert summary.end_time >= summary.start_time
        span = summary.end_time - summary.start_time
        assert summary.total_duration_s == span or math.isclose(
            summary.total_duration_s, span, rel_tol=1e-9, abs_tol=1e-6
        )
    else:
        assert summary.end_time is None and summary.end_reason is None


def check_devices(core):
    for dev in core.devices.values():
        machine = dev.state_machine
        assert machine.state in set(State)
        open_states = machine.state in (State.IDLE, State.STARTING)
        assert (machine.session is None) == open_states, machine.state
        if machine.session is not None:
            check_summary(machine.session, closed=False)
            assert machine.session.start_time <= machine.last_ts
        live = dev.live_row()
        # What the flush writes: jsonb and float8 columns refuse NaN/Infinity.
        json.dumps(live.detector_snapshot, allow_nan=False)
        if live.parser_snapshot is not None:
            json.dumps(live.parser_snapshot, allow_nan=False)
        for key in ("power_w", "energy_wh"):
            assert _finite(getattr(live, key)), (key, getattr(live, key))


def check_batch(batch, logged_messages):
    stats = batch.stats.get(1, {})
    received = stats.get("received", 0)
    assert received == sum(stats.get(b, 0) for b in BUCKETS), dict(stats)
    assert len(batch.acks) == received
    assert batch.problem_rows <= MAX_RAW_PROBLEM_ROWS
    assert len(batch.raw_rows) <= batch.problem_rows + logged_messages
    for row in batch.raw_rows:
        status, detail, ts, power = row.status, row.detail, row.device_ts, row.power_w
        assert status in {
            "reading",
            "not_reading",
            "rejected",
            "unmatched",
            "duplicate",
        }
        assert detail is None or len(detail) <= 250
        assert _finite(ts) and _finite(power)


def check_ops(history):
    """Per device: opens and closes alternate, closed sessions are consistent."""
    for dev_id, ops in history.items():
        is_open = False
        for op, data in ops:
            if op == "open":
                assert not is_open, (dev_id, ops)
                is_open = True
            elif op == "close":
                assert is_open, (dev_id, ops)
                check_summary(data, closed=True)
                is_open = False
            else:
                check_summary(data, closed=data.end_time is not None)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps=STEPS, discovery=st.booleans())
def test_any_message_sequence_keeps_the_bridge_sane(steps, discovery):
    core, clock, batch = _core(discovery)
    history = {}
    logged = 0
    for kind, arg in steps:
        if kind == "msg":
            ids = core.fleet.routers[1].match(arg.topic)
            logged += bool(set(ids) & LOG_RAW)
            core.handle(1, arg, batch)
            clock.now += 0.01
        elif kind == "advance":
            clock.now += arg
        elif kind == "tick":
            core.tick(batch)
        elif kind == "down":
            core.connection_down(1)
        elif kind == "up":
            core.connection_up(1, session_present=arg)
        else:
            core.seal(batch)
            check_batch(batch, logged)
            for dev_id, work in batch.sessions.items():
                history.setdefault(dev_id, []).extend(map(op_pair, work.ops))
            core.committed(batch, WriteResult({}))
            batch, logged = Batch(), 0
        check_devices(core)
    check_batch(batch, logged)
    for dev_id, work in batch.sessions.items():
        history.setdefault(dev_id, []).extend(map(op_pair, work.ops))
    check_ops(history)
    assert len(core.fleet.unmatched_logged) <= 10_001


def _frame(ts, power, mid, received_at=None):
    payload = json.dumps(_shelly(ts, power, "pm1:0", "NotifyStatus", None)).encode()
    received_at = ts if received_at is None else received_at
    return InboundMessage(
        "shellypmminig3-aabbccddeeff/events/rpc",
        payload,
        1,
        mid,
        False,
        False,
        received_at,
        1,
    )


@settings(max_examples=100, deadline=None)
@given(
    interval=st.floats(1 / 50, 2.0),
    outages=st.lists(
        st.tuples(st.floats(0, 30), st.floats(0.1, 60)), min_size=1, max_size=3
    ),
)
def test_a_meter_under_its_cap_is_never_rate_limited(interval, outages):
    """A meter that keeps under its cap (50/s) loses nothing to the cap, even
    when an outage makes the broker deliver its backlog all at once."""
    core, clock, batch = _core(False)
    mid = 10
    ts = T0
    for up_s, down_s in outages:
        for _ in range(int(up_s / interval)):
            clock.now += interval
            ts += interval
            mid += 1
            core.handle(1, _frame(ts, 5.0, mid), batch)
        core.connection_down(1)
        backlog = int(down_s / interval)
        clock.now += down_s
        core.connection_up(1, session_present=True)
        for _ in range(backlog):
            ts += interval
            mid += 1
            core.handle(1, _frame(ts, 5.0, mid), batch)
        clock.now += 0.001
    assert batch.stats[1]["rate_limited"] == 0
    assert core.devices[1].rate_limited is False


@settings(max_examples=50, deadline=None)
@given(
    flood_s=st.floats(0.5, 10),
    outage_s=st.floats(0, 120),
    rate=st.integers(100, 1000),
)
def test_a_flooding_meter_is_capped_even_after_an_outage(flood_s, outage_s, rate):
    """What gets through is at most the burst, the cap over the time, and
    the cap over the outage (the backlog credit): never the flood."""
    core, clock, batch = _core(False)
    core.connection_down(1)
    clock.now += outage_s
    core.connection_up(1, session_present=True)
    sent = int(flood_s * rate)
    for i in range(sent):
        clock.now += 1.0 / rate
        core.handle(1, _frame(T0 + i * 1e-3, 5.0, i % 65535 + 10), batch)
    cap = 50
    allowed = sent - batch.stats[1]["rate_limited"]
    assert allowed <= 2 * cap + cap * flood_s + cap * outage_s + 1
    if sent > 2 * cap + cap * (flood_s + outage_s) + 1:
        assert core.devices[1].rate_limited is True


def test_a_frame_from_the_far_future_does_not_silence_the_meter():
    core, _clock, batch = _core(False)
    core.handle(1, _frame(T0, 500.0, 10), batch)
    # A broken or hostile clock, received now: not believed (receive time).
    core.handle(1, _frame(9.9e9, 5.0, 11, received_at=T0 + 0.5), batch)
    core.handle(1, _frame(T0 + 1, 600.0, 12), batch)
    assert core.devices[1].state_machine.power_w == 600.0
    assert core.devices[1].state_machine.last_ts == T0 + 1
