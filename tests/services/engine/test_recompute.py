"""Recomputing sessions: where a replay starts and what it changes."""

from ....services.engine import history as h
from ....services.engine.history import Replayed
from ....services.engine.machine import SessionStateMachine
from ....services.engine.recompute import StoredSession, pick_start, plan
from ....services.engine.types import (
    MANUAL,
    POWER_DROP,
    TIMEOUT,
    DetectorConfig,
    SessionSummary,
)
from .test_history import CONFIG, T0, live_automatic, play

W = 3600.0  # the window: one hour from T0


def S(start, end, working=None, energy=1.0, reason=POWER_DROP):
    total = end - start
    working = total if working is None else working
    return SessionSummary(
        T0 + start, T0 + end, total - working, working, energy, reason
    )


def stored(*sessions, manual=()):
    return [StoredSession(n + 1, s, n not in manual) for n, s in enumerate(sessions)]


def test_the_same_sessions_change_nothing():
    a, b = S(100, 200), S(400, 500)
    p = plan([Replayed(a, False), Replayed(b, False)], None, stored(a, b), (T0, T0 + W))
    assert [c.kind for c in p.changes] == ["same", "same"]
    assert [c.stored_id for c in p.changes] == [1, 2]


def test_sessions_appear_vanish_and_change_in_place():
    kept, longer, new = S(100, 200), S(400, 520), S(1000, 1100)
    old = stored(kept, S(400, 500), S(700, 800))
    p = plan([Replayed(s, False) for s in (kept, longer, new)], None, old, (T0, T0 + W))
    assert [(c.kind, c.stored_id) for c in p.changes] == [
        ("same", 1),
        ("change", 2),
        ("vanish", 3),
        ("appear", None),
    ]
    assert p.of_kind("change")[0].after == longer


def test_a_session_across_an_edge_is_recomputed_whole():
    across = S(-300, 100)  # starts before the window
    p = plan([Replayed(across, False)], None, stored(S(-300, 50)), (T0, T0 + W))
    assert p.window[0] == T0 - 300
    assert [c.kind for c in p.changes] == ["change"]


def test_the_running_session_and_what_reaches_into_it_are_left_alone():
    # The machine runs since T0 + 900: a replayed session merging into it
    # (a longer stop delay) is not written, and the stored one it overlaps stays.
    merged = S(700, 1200)
    p = plan(
        [Replayed(S(100, 200), False), Replayed(merged, False)],
        None,
        stored(S(100, 180), S(700, 800)),
        (T0, T0 + W),
        running_start=T0 + 900,
    )
    assert p.window[1] == T0 + 900
    assert [(c.kind, c.stored_id) for c in p.changes] == [("change", 1)]
    assert p.left_alone == [(merged, "running")]


def test_a_persons_sessions_stay_and_nothing_is_written_over_them():
    manual = S(300, 600, reason=MANUAL)
    overlapping = S(500, 700)
    p = plan(
        [Replayed(S(300, 600), True), Replayed(overlapping, False)],
        None,
        stored(manual, S(650, 700), manual=(0,)),
        (T0, T0 + W),
    )
    assert p.left_alone == [(overlapping, "manual")]
    assert p.changes == []  # the stored automatic one it overlapped stays too


def test_the_replays_open_session_is_left_alone():
    open_one = SessionSummary(T0 + 3000, None, 0.0, 60.0, 1.0, None)
    p = plan([], open_one, stored(S(3000, 3050, reason=TIMEOUT)), (T0, T0 + W))
    assert p.left_alone == [(open_one, "open")]
    assert p.changes == []


def test_a_replay_starts_at_rest_under_the_new_parameters():
    idle = SessionStateMachine(CONFIG).snapshot()
    low = dict(idle, power=30.0)  # at rest for standby 50 W, not for 20 W
    busy = dict(idle, state="working", power=700.0)
    starts = [(T0, idle), (T0 + 100, low), (T0 + 200, busy), (T0 + 300, idle)]
    assert pick_start(starts, T0 + 250, DetectorConfig(standby_threshold_w=50)) == 1
    assert pick_start(starts, T0 + 250, DetectorConfig(standby_threshold_w=20)) == 0
    assert pick_start(starts, T0 + 400, CONFIG) == 3
    assert pick_start(starts, T0 - 10, CONFIG) == 0


def test_recomputing_a_played_day_with_unchanged_parameters_changes_nothing():
    steps = []
    powers = [0.0, 0.0, 40.0, 650.0, 655.5, 120.0, 30.0, 2.0, 0.0, 1300.5]
    for n in range(3000):
        steps.append(("read", 1, 1.0, powers[(n // 13) % len(powers)]))
        if n % 40 == 0:
            steps.append(("flush",))
        if n % 900 == 450:
            steps.append(("restart",))
    run = play(steps)
    chunks = [c for c in run.db.chunks if c.device_id == 1]
    assert len(chunks) > 3
    starts = [(c.first_ts, next(h.decode_chunk(c.data)).snapshot) for c in chunks]
    window = (chunks[2].first_ts + 10, chunks[-1].last_ts - 10)
    first = pick_start(starts, window[0] - 60, CONFIG)
    runs = [h.decode_chunk(c.data) for c in chunks[first:]]
    runs.append(h.decode(run.db.devices[1]["tail"]))
    machine, replayed = h.replay_runs(runs, CONFIG)
    live = [StoredSession(n, s, True) for n, s in enumerate(live_automatic(run, 1))]
    p = plan(replayed, machine.session, live, window)
    assert p.changes and {c.kind for c in p.changes} == {"same"}
    # Another standby threshold finds other sessions.
    other = DetectorConfig(standby_threshold_w=35.0, working_threshold_w=100.0)
    first = pick_start(starts, window[0] - 60, other)
    runs = [h.decode_chunk(c.data) for c in chunks[first:]]
    runs.append(h.decode(run.db.devices[1]["tail"]))
    machine, replayed = h.replay_runs(runs, other)
    p = plan(replayed, machine.session, live, window)
    assert {c.kind for c in p.changes} != {"same"}
