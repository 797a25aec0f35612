"""Property-based tests: invariants of the session machine over random input streams.

Streams mix readings (powers around the thresholds, time steps including 0 and
long gaps, optional meter counters with resets, stale redeliveries), watchdog
ticks, offline notices and manual start/stop.  Events and open sessions are
compared whole, so every comparison includes each session's energy.
"""

import dataclasses
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ....services.engine.machine import SessionStateMachine
from ....services.engine.replay import replay
from ....services.engine.types import (
    DetectorConfig,
    SessionClosed,
    SessionOpened,
    StateChanged,
)

FAST = settings(max_examples=150, deadline=None)

STEPS = st.one_of(
    st.sampled_from([0.0, 0.001, 0.5, 1.0, 2.999, 3.0, 3.001, 5.0, 14.999, 15.0]),
    st.sampled_from([15.001, 19.999, 20.0, 20.001, 60.0, 3600.0]),
    st.floats(0.0, 40.0, allow_nan=False),
)
POWERS = st.one_of(
    st.sampled_from([0.0, 5.0, 19.999, 20.0, 20.001, 50.0, 99.999, 100.0, 100.001]),
    st.floats(0.0, 3000.0, allow_nan=False),
)
CONFIGS = st.one_of(
    st.just(DetectorConfig()),
    st.builds(
        DetectorConfig,
        standby_threshold_w=st.sampled_from([20.0, 50.0]),
        working_threshold_w=st.sampled_from([50.0, 100.0]),
        start_debounce_s=st.sampled_from([0.0, 3.0, 25.0]),
        stop_debounce_s=st.sampled_from([0.0, 15.0, 20.0, 30.0]),
        message_timeout_s=st.sampled_from([5.0, 20.0]),
    ),
)


@st.composite
def programs(draw, with_others=True):
    """A list of input ops with device times; returns (ops, end_time)."""
    t = draw(st.sampled_from([0.0, 1_700_000_000.0]))
    counter = draw(st.floats(0.0, 1e4))
    kinds = ["feed"] * 6 + ["stale"]
    if with_others:
        kinds += ["tick", "tick", "offline", "manual_start", "manual_stop"]
    ops = []
    for _ in range(draw(st.integers(0, 40))):
        kind = draw(st.sampled_from(kinds))
        t += draw(STEPS)
        if kind in ("feed", "stale"):
            energy = None
            if draw(st.booleans()):
                reset = draw(st.integers(0, 9)) == 0
                counter = 0.0 if reset else counter + draw(st.floats(0.0, 5.0))
                energy = counter
            back = (
                draw(st.sampled_from([0.0, 0.5, 3.0, 30.0])) if kind == "stale" else 0
            )
            ops.append(("feed", t - back, draw(POWERS), energy))
        else:
            ops.append((kind, t))
    return ops, t + draw(STEPS)


def apply(machine, op):
    if op[0] == "feed":
        return machine.feed(op[1], op[2], op[3])
    return getattr(machine, op[0])(op[1])


def run(machine, ops):
    return [event for op in ops for event in apply(machine, op)]


def sessions_of(machine, events):
    done = [e.summary for e in events if type(e) is SessionClosed]
    return done + ([machine.session] if machine.session is not None else [])


@FAST
@given(CONFIGS, programs())
def test_sessions_are_ordered_consistent_and_durations_add_up(config, program):
    ops, end = program
    machine = SessionStateMachine(config)
    events = run(machine, ops) + machine.tick(end)
    sessions = sessions_of(machine, events)
    for session in sessions:
        stop = session.end_time
        if stop is None:  # the open session: last, counted up to now at most
            assert session is sessions[-1]
            assert session.end_reason is None
            stop = session.start_time + session.total_duration_s
            assert stop <= end
        assert session.start_time <= stop
        assert session.standby_duration_s >= 0
        assert session.working_duration_s >= 0
        assert session.energy_wh >= 0
        total = session.standby_duration_s + session.working_duration_s
        assert abs(total - (stop - session.start_time)) <= 1e-6
    for before, after in itertools.pairwise(sessions):
        assert before.end_time is not None
        assert before.end_time <= after.start_time
    opened = [e for e in events if type(e) is SessionOpened]
    assert [e.start_time for e in opened] == [s.start_time for s in sessions]
    changes = [e for e in events if type(e) is StateChanged]
    for before, after in itertools.pairwise(changes):
        assert after.old is before.new
        assert after.ts >= before.ts
    assert machine.state == (changes[-1].new if changes else "idle")


@FAST
@given(CONFIGS, programs(), st.data())
def test_redelivered_readings_change_nothing(config, program, data):
    ops, end = program
    reference = SessionStateMachine(config)
    expected = run(reference, ops) + reference.tick(end)
    noisy = list(ops)
    feeds = [op for op in ops if op[0] == "feed"]
    for _ in range(data.draw(st.integers(1, 8)) if feeds else 0):
        op = data.draw(st.sampled_from(feeds))
        first = noisy.index(op)
        noisy.insert(data.draw(st.integers(first + 1, len(noisy))), op)
    machine = SessionStateMachine(config)
    assert run(machine, noisy) + machine.tick(end) == expected
    assert machine.snapshot() == reference.snapshot()


@FAST
@given(CONFIGS, programs(), st.data())
def test_snapshot_json_restore_anywhere_gives_same_events(config, program, data):
    ops, end = program
    ops = [*ops, ("tick", end)]
    reference = SessionStateMachine(config)
    expected = run(reference, ops)
    split = data.draw(st.integers(0, len(ops)))
    first = SessionStateMachine(config)
    head = run(first, ops[:split])
    snap = json.loads(json.dumps(first.snapshot(), allow_nan=False))
    second = SessionStateMachine.restore(config, snap)
    assert head + run(second, ops[split:]) == expected
    assert second.snapshot() == reference.snapshot()
    assert second.session == reference.session


@FAST
@given(CONFIGS, programs(with_others=False), st.data())
def test_replay_equals_live_machine_with_or_without_watchdog_ticks(
    config, program, data
):
    ops, end = program
    readings = [
        (op[1], op[2]) if op[3] is None else (op[1], op[2], op[3]) for op in ops
    ]
    expected = replay(readings, config, until=end)

    plain = SessionStateMachine(config)
    events = run(plain, ops) + plain.tick(end)
    assert sessions_of(plain, events) == expected

    ticked = SessionStateMachine(config)
    events = []
    previous = None
    for op in ops:
        if previous is not None and op[1] > previous:
            fraction = data.draw(st.sampled_from([0.0, 0.3, 1.0]))
            events += ticked.tick(previous + fraction * (op[1] - previous))
        events += apply(ticked, op)
        previous = max(op[1], previous if previous is not None else op[1])
    events += ticked.tick(end)
    assert sessions_of(ticked, events) == expected


@FAST
@given(CONFIGS, st.data())
def test_energy_is_the_integral_when_the_counter_agrees_with_the_power(config, data):
    """A meter whose counter is exactly the integral of the reported power:
    whichever readings carry a sample, every session gets the energy of the
    same stream without any counter (gaps stay under the timeout, so the
    held power is never forgotten while the meter counts on)."""
    t = data.draw(st.sampled_from([0.0, 1_700_000_000.0]))
    counter = data.draw(st.floats(0.0, 1e4))
    gaps = st.floats(0.001, config.message_timeout_s * 0.99)
    plain, sampled = [], []
    held = None
    for _ in range(data.draw(st.integers(0, 40))):
        step = data.draw(gaps)
        if held is not None:
            counter += held * step / 3600
        t += step
        held = data.draw(POWERS)
        plain.append((t, held))
        sampled.append((t, held, counter) if data.draw(st.booleans()) else (t, held))
    end = t + data.draw(STEPS)
    expected = replay(plain, config, until=end)
    got = replay(sampled, config, until=end)
    assert [dataclasses.replace(s, energy_wh=0.0) for s in got] == [
        dataclasses.replace(s, energy_wh=0.0) for s in expected
    ]
    assert [s.energy_wh for s in got] == pytest.approx(
        [s.energy_wh for s in expected], rel=1e-9, abs=1e-6
    )
