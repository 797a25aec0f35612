"""Scenario table for the session state machine: one named row per transition/edge.

Each row is a program of inputs; the expected state trace (every
``StateChanged`` as ``(ts, new_state)``), the closed sessions, the open
session and the final state are all checked, and then every row is rerun
with a snapshot -> JSON -> restore at every point.
"""

import json

import pytest

from ....services.engine.machine import SessionStateMachine
from ....services.engine.types import DetectorConfig, SessionClosed, StateChanged


def F(ts, power, energy=None):
    return ("feed", ts, power, energy)


def T(now):
    return ("tick", now)


def OFF(ts):
    return ("offline", ts)


def MSTART(ts):
    return ("manual_start", ts)


def MSTOP(ts):
    return ("manual_stop", ts)


def apply(machine, op):
    if op[0] == "feed":
        return machine.feed(op[1], op[2], op[3])
    return getattr(machine, op[0])(op[1])


def run(ops, machine):
    return [event for op in ops for event in apply(machine, op)]


def case(name, ops, trace, closed=(), open_=None, state="idle", cfg=None):
    """closed: (start, end, standby_s, working_s, reason[, energy_wh]);
    open_: (start, standby_s, working_s)."""
    return pytest.param(ops, trace, list(closed), open_, state, cfg or {}, id=name)


# Short state names keep each row on one line.
STRT, WORK, IDLE, STPG, STBY = "starting", "working", "idle", "stopping", "standby"

CASES = [
    case(
        "start_reading_at_exact_debounce_boundary_opens_then_stops",
        [F(100, 50), F(103, 5), T(118)],
        [(100, STRT), (103, STBY), (103, STPG), (118, IDLE)],
        [(100, 103, 3, 0, "power_drop")],
    ),
    case(
        "start_drop_just_before_boundary_no_session",
        [F(100, 50), F(102.999, 5), T(200)],
        [(100, STRT), (102.999, IDLE)],
    ),
    case(
        "start_opens_on_tick_at_deadline",
        [F(100, 150), T(102.999), T(103)],
        [(100, STRT), (103, WORK)],
        open_=(100, 0, 3),
        state=WORK,
    ),
    case(
        "flicker_while_starting_restarts_debounce",
        [F(0, 50), F(1, 0), F(2, 60), F(3, 0), F(4, 70), T(6.9), T(7)],
        [(0, STRT), (1, IDLE), (2, STRT), (3, IDLE), (4, STRT), (7, STBY)],
        open_=(4, 3, 0),
        state=STBY,
    ),
    case(
        "short_dip_continues_gap_counts_as_standby",
        [F(0, 150), T(3), F(10, 5), F(20, 150), F(30, 0), T(45)],
        [(0, STRT), (3, WORK), (10, STPG), (20, WORK), (30, STPG), (45, IDLE)],
        [(0, 30, 10, 20, "power_drop")],
    ),
    case(
        "long_dip_closes_at_t_stop",
        [F(0, 150), F(10, 0), F(12, 3), T(24.999), T(25)],
        [(0, STRT), (3, WORK), (10, STPG), (25, IDLE)],
        [(0, 10, 0, 10, "power_drop")],
    ),
    case(
        "high_reading_at_exact_stop_boundary_closes_then_starts",
        [F(0, 150), F(10, 0), F(25, 150)],
        [(0, STRT), (3, WORK), (10, STPG), (25, IDLE), (25, STRT)],
        [(0, 10, 0, 10, "power_drop")],
        state=STRT,
    ),
    case(
        "high_reading_just_before_stop_boundary_continues",
        [F(0, 150), F(10, 0), F(24.999, 150), F(30, 0), T(45)],
        [(0, STRT), (3, WORK), (10, STPG), (24.999, WORK), (30, STPG), (45, IDLE)],
        [(0, 30, 14.999, 15.001, "power_drop")],
    ),
    case(
        "sparse_reports_steady_load_stays_open",
        [F(0, 500), T(5), T(10), T(19.999)],
        [(0, STRT), (3, WORK)],
        open_=(0, 0, 19.999),
        state=WORK,
    ),
    case(
        "silence_times_out_at_last_reading",
        [F(0, 500), F(5, 500), T(24.999), T(25)],
        [(0, STRT), (3, WORK), (25, IDLE)],
        [(0, 5, 0, 5, "timeout")],
    ),
    case(
        "reading_at_exact_timeout_closes_first_then_starts",
        [F(0, 500), F(20, 500)],
        [(0, STRT), (3, WORK), (20, IDLE), (20, STRT)],
        [(0, 0, 0, 0, "timeout")],
        state=STRT,
    ),
    case(
        "timeout_while_starting_fires_before_longer_debounce",
        [F(0, 50), T(25), T(40)],
        [(0, STRT), (20, IDLE)],
        cfg={"start_debounce_s": 30},
    ),
    case(
        "stop_debounce_expires_before_timeout_is_power_drop",
        [F(0, 150), F(10, 0), T(100)],
        [(0, STRT), (3, WORK), (10, STPG), (25, IDLE)],
        [(0, 10, 0, 10, "power_drop")],
    ),
    case(
        "timeout_before_longer_stop_debounce_ends_at_t_stop",
        [F(0, 150), F(10, 0), T(100)],
        [(0, STRT), (3, WORK), (10, STPG), (30, IDLE)],
        [(0, 10, 0, 10, "timeout")],
        cfg={"stop_debounce_s": 30},
    ),
    case(
        "equal_deadlines_debounce_wins",
        [F(0, 150), F(10, 0), T(30)],
        [(0, STRT), (3, WORK), (10, STPG), (30, IDLE)],
        [(0, 10, 0, 10, "power_drop")],
        cfg={"stop_debounce_s": 20},
    ),
    case(
        "equal_start_and_timeout_deadlines_open_then_time_out",
        [F(0, 50), T(20)],
        [(0, STRT), (20, STBY), (20, IDLE)],
        [(0, 0, 0, 0, "timeout")],
        cfg={"start_debounce_s": 20},
    ),
    case(
        "duplicate_and_stale_readings_ignored",
        [F(0, 150), F(5, 150), F(5, 0), F(4, 0), F(0, 150), T(10)],
        [(0, STRT), (3, WORK)],
        open_=(0, 0, 10),
        state=WORK,
    ),
    case(
        "reading_older_than_fired_deadline_is_stale",
        [F(0, 150), F(10, 0), T(25), F(12, 150), F(25, 0)],
        [(0, STRT), (3, WORK), (10, STPG), (25, IDLE)],
        [(0, 10, 0, 10, "power_drop")],
    ),
    case(
        "late_reading_after_idle_tick_is_processed",
        [F(0, 150), T(8), F(6, 0), T(21)],
        [(0, STRT), (3, WORK), (6, STPG), (21, IDLE)],
        [(0, 6, 0, 6, "power_drop")],
    ),
    case(
        "power_equal_to_standby_threshold_is_on",
        [F(0, 20), T(3), F(5, 19.999), T(20)],
        [(0, STRT), (3, STBY), (5, STPG), (20, IDLE)],
        [(0, 5, 5, 0, "power_drop")],
    ),
    case(
        "power_equal_to_working_threshold_is_working",
        [F(0, 100), T(3), F(5, 99.999), F(6, 100), T(8)],
        [(0, STRT), (3, WORK), (5, STBY), (6, WORK)],
        open_=(0, 1, 7),
        state=WORK,
    ),
    case(
        "standby_working_switching_exact_durations",
        [F(0, 50), T(3), F(5, 150), F(7.5, 60), F(10, 100), F(12, 0), T(27)],
        [
            (0, STRT),
            (3, STBY),
            (5, WORK),
            (7.5, STBY),
            (10, WORK),
            (12, STPG),
            (27, IDLE),
        ],
        [(0, 12, 7.5, 4.5, "power_drop")],
    ),
    case(
        "mixed_levels_while_starting_split_by_held_power",
        [F(0, 50), F(1, 150), F(2, 60), T(3), F(4, 0), T(19)],
        [(0, STRT), (3, STBY), (4, STPG), (19, IDLE)],
        [(0, 4, 3, 1, "power_drop")],
    ),
    case(
        "offline_while_running",
        [F(0, 150), T(5), OFF(8), T(100)],
        [(0, STRT), (3, WORK), (8, IDLE)],
        [(0, 8, 0, 8, "offline")],
    ),
    case(
        "offline_while_starting_no_session",
        [F(0, 150), OFF(1), T(10)],
        [(0, STRT), (1, IDLE)],
    ),
    case(
        "offline_while_stopping_ends_at_t_stop",
        [F(0, 150), F(10, 0), OFF(12)],
        [(0, STRT), (3, WORK), (10, STPG), (12, IDLE)],
        [(0, 10, 0, 10, "offline")],
    ),
    case(
        "offline_older_than_processed_time_is_applied_now",
        [F(0, 150), F(10, 150), OFF(7)],
        [(0, STRT), (3, WORK), (10, IDLE)],
        [(0, 10, 0, 10, "offline")],
    ),
    case(
        "manual_start_from_idle_then_manual_stop",
        [MSTART(5), F(6, 150), MSTOP(10)],
        [(5, STBY), (6, WORK), (10, IDLE)],
        [(5, 10, 1, 4, "manual")],
    ),
    case(
        "manual_start_below_standby_then_drop",
        [F(0, 5), MSTART(10), F(12, 5), T(27)],
        [(10, STBY), (12, STPG), (27, IDLE)],
        [(10, 12, 2, 0, "power_drop")],
    ),
    case(
        "manual_start_times_out_at_its_own_time",
        [F(0, 500), F(1, 5), T(100), MSTART(200), T(220)],
        [(0, STRT), (1, IDLE), (200, STBY), (220, IDLE)],
        [(200, 200, 0, 0, "timeout")],
    ),
    case(
        "manual_start_during_starting_keeps_t_start",
        [F(0, 150), MSTART(1), T(10)],
        [(0, STRT), (1, WORK)],
        open_=(0, 0, 10),
        state=WORK,
    ),
    case(
        "manual_start_is_noop_with_open_session",
        [F(0, 150), T(3), MSTART(4), T(5)],
        [(0, STRT), (3, WORK)],
        open_=(0, 0, 5),
        state=WORK,
    ),
    case(
        "manual_stop_is_noop_without_session",
        [F(0, 5), MSTOP(5), F(6, 50), MSTOP(7)],
        [(6, STRT)],
        state=STRT,
    ),
    case(
        "manual_stop_while_stopping_ends_at_t_stop",
        [F(0, 150), F(10, 0), MSTOP(12)],
        [(0, STRT), (3, WORK), (10, STPG), (12, IDLE)],
        [(0, 10, 0, 10, "manual")],
    ),
    case(
        "start_debounce_zero_opens_at_once",
        [F(0, 50), F(1, 0)],
        [(0, STRT), (0, STBY), (1, STPG)],
        open_=(0, 1, 0),
        state=STPG,
        cfg={"start_debounce_s": 0},
    ),
    case(
        "stop_debounce_zero_closes_at_once",
        [F(0, 150), T(3), F(10, 0), F(11, 150)],
        [(0, STRT), (3, WORK), (10, STPG), (10, IDLE), (11, STRT)],
        [(0, 10, 0, 10, "power_drop")],
        state=STRT,
        cfg={"stop_debounce_s": 0},
    ),
    case(
        "energy_from_counter_held_at_t_stop",
        [F(0, 150, 1000.0), F(10, 150, 1000.5), F(20, 0, 1001.0), F(22, 0, 1002.0)]
        + [T(35)],
        [(0, STRT), (3, WORK), (20, STPG), (35, IDLE)],
        [(0, 20, 0, 20, "power_drop", 1.0)],
    ),
    case(
        "energy_integral_without_counter",
        [F(0, 360), F(5, 720), F(10, 0), T(25)],
        [(0, STRT), (3, WORK), (10, STPG), (25, IDLE)],
        [(0, 10, 0, 10, "power_drop", 1.5)],
    ),
    case(
        "counter_reset_falls_back_to_integral",
        [F(0, 360, 500.0), F(10, 360, 2.0), F(20, 0, 3.0), T(35)],
        [(0, STRT), (3, WORK), (20, STPG), (35, IDLE)],
        [(0, 20, 0, 20, "power_drop", 2.0)],
    ),
    case(
        "counter_decrease_above_start_value_is_a_reset",
        [F(0, 360, 10.0), F(10, 360, 15.0), F(15, 360, 12.0), F(20, 0, 13.0), T(35)],
        [(0, STRT), (3, WORK), (20, STPG), (35, IDLE)],
        [(0, 20, 0, 20, "power_drop", 2.0)],
    ),
    # Was 1.5 Wh (counter only); the integral now fills the head [0, 10].
    case(
        "counter_first_seen_inside_session_integral_fills_head",
        [F(0, 360), F(10, 360, 7.0), F(20, 0, 8.5), T(35)],
        [(0, STRT), (3, WORK), (20, STPG), (35, IDLE)],
        [(0, 20, 0, 20, "power_drop", 1.0 + 1.5)],
    ),
    # Was 1.0 Wh (counter only); the integral now fills the tail [10, 20].
    case(
        "counter_held_from_before_start_integral_fills_tail",
        [F(0, 0, 40.0), F(5, 360), F(10, 360, 41.0), F(20, 0), T(35)],
        [(5, STRT), (8, WORK), (20, STPG), (35, IDLE)],
        [(5, 20, 0, 15, "power_drop", 1.0 + 1.0)],
    ),
    # Shelly-like rows: power every 5-10 s, a counter sample about once a minute.
    case(
        "energy_40s_session_sample_only_before_start_is_the_integral",
        [F(0, 10, 500.0)]
        + [F(t, 1000) for t in range(100, 140, 10)]
        + [F(140, 0), T(155)],
        [(100, STRT), (103, WORK), (140, STPG), (155, IDLE)],
        [(100, 140, 0, 40, "power_drop", 1000 * 40 / 3600)],  # 11.111 Wh
    ),
    case(
        "energy_10min_consistent_samples_every_60s",
        [F(-100, 0, 1000.0)]
        + [F(t, 1200, 1000 + t / 3 if t % 60 == 30 else None) for t in range(0, 600, 5)]
        + [F(600, 0), T(615)],
        [(0, STRT), (3, WORK), (600, STPG), (615, IDLE)],
        [(0, 600, 0, 600, "power_drop", 200.0)],
    ),
    # Counter 250 Wh over [60, 660] where 1200 W integrates to 200 Wh: the
    # counter wins there, the integral adds the head [0, 60] and tail [660, 720].
    case(
        "energy_counter_disagrees_counter_covers_its_span",
        [F(t, 1200, {60: 1000.0, 660: 1250.0}.get(t)) for t in range(0, 720, 5)]
        + [F(720, 0), T(735)],
        [(0, STRT), (3, WORK), (720, STPG), (735, IDLE)],
        [(0, 720, 0, 720, "power_drop", 20 + 250 + 20)],
    ),
    # 12 W idle from -300 with a sample there: the head [-300, 0] integrates to
    # 1 Wh and is taken off the 251 Wh the counter rose until 600.
    case(
        "energy_sample_held_from_idle_head_integral_subtracted",
        [F(-300, 12, 1000.0)]
        + [F(t, 1200, 1251.0 if t == 600 else None) for t in range(0, 720, 5)]
        + [F(720, 0), T(735)],
        [(0, STRT), (3, WORK), (720, STPG), (735, IDLE)],
        [(0, 720, 0, 720, "power_drop", 250 + 1200 * 120 / 3600)],
    ),
    # The counter rose 0.5 Wh where the idle head alone integrates to 10 Wh:
    # the covered part [3600, 3700] counts 0, the tail [3700, 3760] is kept.
    case(
        "energy_counter_below_head_integral_covered_part_is_zero",
        [F(0, 10, 100.0)]
        + [F(t, 1000, 100.5 if t == 3700 else None) for t in range(3600, 3760, 10)]
        + [F(3760, 0), T(3775)],
        [(3600, STRT), (3603, WORK), (3760, STPG), (3775, IDLE)],
        [(3600, 3760, 0, 160, "power_drop", 1000 * 60 / 3600)],
    ),
    case(
        "energy_counter_reset_inside_is_the_integral",
        [F(0, 0, 5000.0), F(100, 900), F(110, 900, 0.2), F(120, 900, 3.0)]
        + [F(130, 900), F(140, 0), T(155)],
        [(100, STRT), (103, WORK), (140, STPG), (155, IDLE)],
        [(100, 140, 0, 40, "power_drop", 10.0)],
    ),
    # Closing from stopping: end t_stop = 60, the sample at 70 is not used.
    case(
        "energy_stopping_close_uses_samples_up_to_t_stop",
        [F(-10, 0, 100.0)]
        + [F(t, 1200, 110.0 if t == 30 else None) for t in range(0, 60, 10)]
        + [F(60, 0), F(70, 0, 125.0), T(75)],
        [(0, STRT), (3, WORK), (60, STPG), (75, IDLE)],
        [(0, 60, 0, 60, "power_drop", 10.0 + 10.0)],
    ),
    # The same, but power comes back: the sample at 70 is inside the session.
    case(
        "energy_sample_while_stopping_counts_if_session_continues",
        [F(-10, 0, 100.0)]
        + [F(t, 1200, 110.0 if t == 30 else None) for t in range(0, 60, 10)]
        + [F(60, 0), F(70, 0, 125.0), F(72, 1200), F(80, 0), T(95)],
        [(0, STRT), (3, WORK), (60, STPG), (72, WORK), (80, STPG), (95, IDLE)],
        [(0, 80, 12, 68, "power_drop", 25.0 + 1200 * 8 / 3600)],
    ),
    # Offline at 10 forgets the power: [10, 50] adds nothing to the head that
    # is taken off the counter (7 Wh over [0, 110]; I over [0, 50] is 1 Wh).
    case(
        "energy_offline_gap_adds_nothing_to_the_head",
        [F(0, 360, 100.0), T(5), OFF(10)]
        + [F(t, 360, 107.0 if t == 110 else None) for t in range(50, 120, 10)]
        + [F(120, 0), T(135)],
        [(0, STRT), (3, WORK), (10, IDLE), (50, STRT), (53, WORK)]
        + [(120, STPG), (135, IDLE)],
        [(0, 10, 0, 10, "offline", 1.0), (50, 120, 0, 70, "power_drop", 6.0 + 1.0)],
    ),
    # A timeout forgets the power at the last reading (10), not at 30.
    case(
        "energy_timeout_gap_adds_nothing_to_the_head",
        [F(0, 360, 100.0), F(10, 360), T(30)]
        + [F(t, 360, 107.0 if t == 110 else None) for t in range(50, 120, 10)]
        + [F(120, 0), T(135)],
        [(0, STRT), (3, WORK), (30, IDLE), (50, STRT), (53, WORK)]
        + [(120, STPG), (135, IDLE)],
        [(0, 10, 0, 10, "timeout", 1.0), (50, 120, 0, 70, "power_drop", 6.0 + 1.0)],
    ),
]


def check(machine, events, trace, closed, open_, state):
    got_trace = [(e.ts, e.new.value) for e in events if type(e) is StateChanged]
    assert got_trace == [(pytest.approx(ts, abs=1e-9), st) for ts, st in trace]
    summaries = [e.summary for e in events if type(e) is SessionClosed]
    assert len(summaries) == len(closed)
    for got, want in zip(summaries, closed, strict=True):
        start, end, standby, working, reason = want[:5]
        assert got.start_time == pytest.approx(start)
        assert got.end_time == pytest.approx(end)
        assert got.standby_duration_s == pytest.approx(standby, abs=1e-9)
        assert got.working_duration_s == pytest.approx(working, abs=1e-9)
        assert got.end_reason == reason
        assert got.total_duration_s == pytest.approx(end - start, abs=1e-9)
        if len(want) > 5:
            assert got.energy_wh == pytest.approx(want[5], abs=1e-9)
    if open_ is None:
        assert machine.session is None
    else:
        current = machine.session
        assert current.end_time is None and current.end_reason is None
        assert (
            current.start_time,
            current.standby_duration_s,
            current.working_duration_s,
        ) == pytest.approx(open_, abs=1e-9)
    assert machine.state.value == state


@pytest.mark.parametrize(("ops", "trace", "closed", "open_", "state", "cfg"), CASES)
def test_scenario(ops, trace, closed, open_, state, cfg):
    machine = SessionStateMachine(DetectorConfig(**cfg))
    events = run(ops, machine)
    check(machine, events, trace, closed, open_, state)


@pytest.mark.parametrize(("ops", "trace", "closed", "open_", "state", "cfg"), CASES)
def test_scenario_survives_json_snapshot_at_every_point(
    ops, trace, closed, open_, state, cfg
):
    config = DetectorConfig(**cfg)
    reference = SessionStateMachine(config)
    per_op = [apply(reference, op) for op in ops]
    for split in range(len(ops) + 1):
        first = SessionStateMachine(config)
        head = run(ops[:split], first)
        snap = json.loads(json.dumps(first.snapshot(), allow_nan=False))
        second = SessionStateMachine.restore(config, snap)
        tail = run(ops[split:], second)
        assert head + tail == [e for events in per_op for e in events]
        assert second.snapshot() == reference.snapshot()
        check(second, head + tail, trace, closed, open_, state)
