"""API-level tests of the session state machine: config, events, views, replay."""

import dataclasses
import json
import math
import re

import pytest

from ....services.engine.machine import SNAPSHOT_VERSION, SessionStateMachine
from ....services.engine.replay import replay
from ....services.engine.types import (
    MANUAL,
    OFFLINE,
    POWER_DROP,
    TIMEOUT,
    DetectorConfig,
    SessionClosed,
    SessionOpened,
    SessionSummary,
    State,
    StateChanged,
)


def machine(**cfg):
    return SessionStateMachine(DetectorConfig(**cfg))


def closed(events):
    return [e.summary for e in events if type(e) is SessionClosed]


def test_config_defaults_and_float_coercion():
    cfg = DetectorConfig(standby_threshold_w=10, working_threshold_w=10)
    assert DetectorConfig() == DetectorConfig(20.0, 100.0, 3.0, 15.0, 20.0)
    assert cfg.standby_threshold_w == 10.0
    assert type(cfg.working_threshold_w) is float
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.stop_debounce_s = 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"standby_threshold_w": 0}, "standby_threshold_w must be > 0, got 0.0"),
        ({"standby_threshold_w": -5}, "standby_threshold_w must be > 0"),
        (
            {"standby_threshold_w": 150},
            "standby_threshold_w (150.0) must be <= working_threshold_w (100.0)",
        ),
        ({"start_debounce_s": -1}, "start_debounce_s must be >= 0, got -1.0"),
        ({"stop_debounce_s": -0.5}, "stop_debounce_s must be >= 0, got -0.5"),
        ({"message_timeout_s": 0}, "message_timeout_s must be > 0, got 0.0"),
        ({"working_threshold_w": math.nan}, "working_threshold_w must be a finite"),
        ({"message_timeout_s": math.inf}, "message_timeout_s must be a finite"),
        (
            {"start_debounce_s": True},
            "start_debounce_s must be a finite number, got True",
        ),
        (
            {"stop_debounce_s": "15"},
            "stop_debounce_s must be a finite number, got '15'",
        ),
        ({"standby_threshold_w": None}, "standby_threshold_w must be a finite"),
    ],
)
def test_config_validation_names_field_and_value(kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        DetectorConfig(**kwargs)


def test_state_is_a_plain_string_value():
    assert State.WORKING == "working"
    assert str(State.STOPPING) == "stopping"
    assert f"{State.IDLE}" == "idle"
    assert json.dumps([State.STANDBY]) == '["standby"]'
    assert [s.value for s in State] == [
        "idle",
        "starting",
        "standby",
        "working",
        "stopping",
    ]
    assert (POWER_DROP, TIMEOUT, OFFLINE, MANUAL) == (
        "power_drop",
        "timeout",
        "offline",
        "manual",
    )


def test_events_are_frozen_and_summary_totals():
    summary = SessionSummary(0.0, 10.0, 4.0, 6.0, 1.5, POWER_DROP)
    assert summary.total_duration_s == 10.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.end_time = 3.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        StateChanged(1.0, State.IDLE, State.STARTING, 50.0).ts = 2.0


def test_fresh_machine_views():
    m = machine()
    assert (m.state, m.power_w, m.last_ts, m.session) == (State.IDLE, None, None, None)
    assert m.next_deadline() is None
    assert m.config == DetectorConfig()


def test_event_order_and_manual_flags():
    m = machine()
    events = m.feed(0, 150) + m.tick(3)
    assert [type(e) for e in events] == [StateChanged, StateChanged, SessionOpened]
    assert events[2] == SessionOpened(0, State.WORKING, False)
    events = m.feed(5, 0) + m.tick(20)
    assert [type(e) for e in events] == [StateChanged, StateChanged, SessionClosed]
    assert events[1] == StateChanged(20.0, State.STOPPING, State.IDLE, 0)
    assert m.manual_start(30) == [
        StateChanged(30, State.IDLE, State.STANDBY, 0),
        SessionOpened(30, State.STANDBY, True),
    ]
    assert closed(m.manual_stop(31)) == [SessionSummary(30, 31, 1, 0, 0.0, MANUAL)]
    assert m.state is State.IDLE
    assert m.power_w == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((math.nan, 10.0), "finite ts, power_w and energy_wh: nan, 10.0, None"),
        ((5.0, math.inf), "finite ts, power_w and energy_wh"),
        ((5.0, None), "finite ts, power_w and energy_wh"),
        ((5.0, "12"), "finite ts, power_w and energy_wh"),
        ((5.0, 10.0, math.nan), "finite ts, power_w and energy_wh: 5.0, 10.0, nan"),
        ((5.0, 10.0, "7"), "finite ts, power_w and energy_wh"),
    ],
)
def test_feed_rejects_non_finite_input(args, fragment):
    m = machine()
    m.feed(1.0, 150.0)
    before = m.snapshot()
    with pytest.raises(ValueError, match=fragment):
        m.feed(*args)
    assert m.snapshot() == before
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="finite time"):
            m.tick(bad)
        with pytest.raises(ValueError, match="finite time"):
            m.offline(bad)


def test_tick_backwards_and_stale_feed_do_nothing():
    m = machine()
    m.feed(0, 150)
    m.tick(10)
    before = m.snapshot()
    assert m.tick(9) == []
    assert m.feed(0, 0) == []
    assert m.feed(-1, 0) == []
    assert m.snapshot() == before
    assert m.session.working_duration_s == 10.0


def test_next_deadline_follows_state():
    m = machine()
    m.feed(100, 50)
    assert m.next_deadline() == 103.0
    m.tick(103)
    assert m.next_deadline() == 120.0
    m.feed(110, 150)
    assert m.next_deadline() == 130.0
    m.feed(112, 1)
    assert m.next_deadline() == 127.0
    m.offline(113)
    assert m.next_deadline() is None
    assert (m.state, m.power_w) == (State.IDLE, None)


def test_open_session_view_counts_to_processed_time_and_freezes_when_stopping():
    m = machine()
    m.feed(0, 360)
    m.tick(10)
    live = m.session
    assert (live.working_duration_s, live.standby_duration_s) == (10.0, 0.0)
    assert live.energy_wh == pytest.approx(1.0)
    m.feed(10, 0)
    m.tick(14)
    stopping = m.session
    assert (stopping.start_time, stopping.total_duration_s) == (0, 10.0)
    assert stopping.energy_wh == pytest.approx(1.0)
    assert stopping.end_time is None


def test_reconfigure_keeps_open_session_and_applies_to_later_inputs():
    m = machine()
    m.feed(0, 150)
    m.tick(3)
    m.reconfigure(DetectorConfig(standby_threshold_w=200, working_threshold_w=400))
    assert m.state is State.WORKING
    assert m.tick(4) == []
    events = m.feed(5, 150)
    assert events == [StateChanged(5, State.WORKING, State.STOPPING, 150)]
    m.reconfigure(
        DetectorConfig(
            standby_threshold_w=200, working_threshold_w=400, stop_debounce_s=1.0
        )
    )
    assert m.next_deadline() == 6.0
    events = m.tick(9)
    assert events[0] == StateChanged(6.0, State.STOPPING, State.IDLE, 150)
    assert closed(events)[0].end_time == 5
    with pytest.raises(TypeError, match="DetectorConfig"):
        m.reconfigure({"standby_threshold_w": 5})


def test_shortened_deadline_is_dated_no_earlier_than_last_event():
    m = machine(start_debounce_s=10)
    m.feed(0, 50)
    m.feed(5, 60)
    m.reconfigure(DetectorConfig(start_debounce_s=1))
    events = m.tick(6)
    assert events[0] == StateChanged(5, State.STARTING, State.STANDBY, 60)
    assert events[1] == SessionOpened(0, State.STANDBY, False)


def test_manual_stop_leaves_held_power_and_new_reading_debounces():
    m = machine()
    m.feed(0, 500)
    m.tick(5)
    assert closed(m.manual_stop(6))[0].end_reason == MANUAL
    assert (m.state, m.power_w, m.next_deadline()) == (State.IDLE, 500, None)
    assert m.feed(7, 500) == [StateChanged(7, State.IDLE, State.STARTING, 500)]


def test_offline_and_manual_inputs_older_than_processed_time_apply_now():
    m = machine()
    m.feed(0, 500)
    m.tick(50)
    m.feed(60, 150)
    assert m.manual_start(40)[1] == SessionOpened(60, State.WORKING, True)
    assert closed(m.manual_stop(10)) == [SessionSummary(60, 60, 0.0, 0.0, 0.0, MANUAL)]


def test_duration_invariant_exact_with_device_epoch_timestamps():
    m = machine()
    base = 1_700_000_000.123
    events = []
    for i in range(20_000):
        power = (30.0, 150.0, 99.9, 100.0)[i % 4]
        events += m.feed(base + i * 0.37, power)
    events += m.feed(base + 20_000 * 0.37, 0.0) + m.tick(base + 10**5)
    (summary,) = closed(events)
    total = summary.end_time - summary.start_time
    assert summary.standby_duration_s + summary.working_duration_s == pytest.approx(
        total, abs=1e-6
    )
    assert summary.working_duration_s == pytest.approx(total / 2, rel=1e-6)


def test_snapshot_is_versioned_json_and_restore_validates():
    m = machine()
    snap = m.snapshot()
    assert snap["version"] == SNAPSHOT_VERSION == 2
    assert json.loads(json.dumps(snap, allow_nan=False)) == snap
    m.feed(0, 150, 12.5)
    m.tick(4)
    snap = json.loads(json.dumps(m.snapshot(), allow_nan=False))
    again = SessionStateMachine.restore(DetectorConfig(), snap)
    assert (again.state, again.power_w, again.last_ts) == (State.WORKING, 150, 0)
    assert again.session == m.session
    with pytest.raises(ValueError, match="unsupported session snapshot version 99"):
        SessionStateMachine.restore(DetectorConfig(), {**snap, "version": 99})
    with pytest.raises(ValueError, match="invalid session snapshot"):
        SessionStateMachine.restore(DetectorConfig(), {**snap, "state": "running"})
    broken = dict(snap)
    del broken["t_stop"]
    with pytest.raises(ValueError, match="invalid session snapshot"):
        SessionStateMachine.restore(DetectorConfig(), broken)


def test_restore_with_new_config_applies_new_thresholds():
    m = machine()
    m.feed(0, 150)
    m.tick(3)
    cfg = DetectorConfig(message_timeout_s=100)
    again = SessionStateMachine.restore(cfg, json.loads(json.dumps(m.snapshot())))
    assert again.next_deadline() == 100.0
    assert again.tick(50) == []


def test_replay_orders_ignores_stale_and_returns_open_last():
    readings = [
        (0, 150, 10.0),
        (5, 150),
        (4, 0),  # stale redelivery: ignored
        [10, 0, 11.0],
        (40, 50),
        (45, 500),
    ]
    sessions = replay(readings, DetectorConfig())
    assert sessions[0] == SessionSummary(0, 10, 0.0, 10, 1.0, POWER_DROP)
    assert sessions[1].end_time is None and sessions[1].start_time == 40
    assert (sessions[1].standby_duration_s, sessions[1].working_duration_s) == (5, 0)
    final = replay(readings, DetectorConfig(), until=100)
    # Only the sample held since 10 s, none inside: the power integral.
    assert final[1] == SessionSummary(40, 45, 5, 0, 50 * 5 / 3600, TIMEOUT)
    no_counter = replay([(r[0], r[1]) for r in readings], DetectorConfig(), 100)
    assert no_counter[1] == final[1]
    assert replay([], DetectorConfig()) == []


def test_replay_recomputes_history_with_new_thresholds():
    readings = [(0, 150), (5, 50), (10, 150), (20, 0)]
    default = replay(readings, DetectorConfig(), until=60)
    strict_cfg = DetectorConfig(standby_threshold_w=80, stop_debounce_s=3)
    strict = replay(readings, strict_cfg, until=60)
    assert [(s.start_time, s.end_time, s.working_duration_s) for s in default] == [
        (0, 20, 15)
    ]
    assert [(s.start_time, s.end_time, s.end_reason) for s in strict] == [
        (0, 5, POWER_DROP),
        (10, 20, POWER_DROP),
    ]


def test_energy_exact_with_samples_consistent_with_power_on_device_epoch():
    """10 min at 1200 W, a sample every 60 s that agrees with the power: 200 Wh."""
    base = 1_780_000_000
    readings = [(base - 100, 0.0, 1000.0)]
    for t in range(0, 600, 5):
        sample = 1000.0 + t / 3 if t % 60 == 30 else None
        readings.append(
            (base + t, 1200.0) if sample is None else (base + t, 1200.0, sample)
        )
    readings.append((base + 600, 0.0))
    (session,) = replay(readings, DetectorConfig(), until=base + 700)
    assert (session.start_time, session.end_time) == (base, base + 600)
    assert session.energy_wh == 200.0
    # Without the sample held before the start the first one (at 30 s) is
    # C_first and the integral fills [0, 30]: still exactly 200 Wh.
    (session,) = replay(readings[1:], DetectorConfig(), until=base + 700)
    assert session.energy_wh == 200.0


def test_open_session_energy_grows_with_the_held_power_after_the_last_sample():
    m = machine(message_timeout_s=120)
    m.feed(0, 0, 10.0)
    m.feed(10, 1800)
    m.tick(13)
    m.feed(70, 1800, 40.0)  # the counter agrees: 1800 W for 60 s is 30 Wh
    assert m.session.energy_wh == 30.0
    m.tick(80)
    assert m.session.energy_wh == 35.0


def test_a_version_1_snapshot_is_refused():
    """Version 1 (counter-only energy) is no longer read: the engine starts
    that machine fresh and logs why (tests/services/engine/test_engine.py)."""
    snap = SessionStateMachine(DetectorConfig()).snapshot()
    with pytest.raises(ValueError, match="unsupported session snapshot version 1"):
        SessionStateMachine.restore(DetectorConfig(), {**snap, "version": 1})
