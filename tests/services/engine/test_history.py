"""The power history: the codec, the tail, and replay giving back exactly the
sessions the live engine made.

The exactness property drives the real ``Engine`` with messy meter traffic --
duplicates, stale and late frames, status frames on the receive clock, polls,
offline notices, a broker outage, restarts of the runner from what the
database holds, a person's manual start and stop -- writes every sealed batch
into a stand-in database the way the writer does, then replays the stored
history (chunks, then the tail) through a fresh state machine with the same
parameters: every automatic session comes back, to the bit.
"""

import json
import math
import zlib

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ....services.engine import history as h
from ....services.engine import recompute
from ....services.engine.machine import SessionStateMachine
from ....services.engine.types import MANUAL, POWER_DROP
from .standin import CONFIG, T0, Runner, live_automatic, notify, replayed


# -- the codec -------------------------------------------------------------------
def test_grid_is_a_millisecond_and_a_milliwatt():
    assert h.grid(1_780_000_000.123456) == 1_780_000_000.123
    assert h.grid(655.5) == 655.5
    assert h.grid(0.0004) == 0.0
    assert h.grid(h.grid(12.3456789)) == h.grid(12.3456789)


def snapshot_of(machine=None):
    return (machine or SessionStateMachine(CONFIG)).snapshot()


def test_records_come_back_exactly_and_seal_into_chunks():
    tail = h.HistoryTail(7, 1)
    sent = []
    ts = T0
    for n in range(2000):
        ts = h.grid(ts + 0.5 + (n % 7) * 0.013)
        kind = (h.READ, h.READ, h.READ, h.TICK, h.OFFLINE, h.ONLINE)[n % 6]
        power = h.grid(500 + 37.3 * math.sin(n)) if kind == h.READ else None
        energy = h.grid(1000 + n * 0.25) if kind == h.READ and n % 9 == 0 else None
        snap = snapshot_of() if tail.wants_snapshot(ts) else None
        tail.add(kind, ts, power, energy, snap)
        sent.append((kind, ts, power, energy))
    assert len(tail.chunks) >= 2
    got = []
    for chunk in tail.chunks:
        records = list(h.decode_chunk(chunk.data))
        assert records[0].kind == h.SNAP
        assert (chunk.first_ts, chunk.count) == (records[0].ts, len(records))
        got.extend(records[1:])
    records = list(h.decode(bytes(tail.data)))
    assert records[0].kind == h.SNAP
    got.extend(records[1:])
    assert [(r.kind, r.ts, r.power_w, r.energy_wh) for r in got] == sent
    # A steady reading costs a few bytes, sealed and compressed even fewer.
    raw = sum(len(zlib.decompress(c.data)) for c in tail.chunks) + len(tail.data)
    packed = sum(len(c.data) for c in tail.chunks) + len(tail.data)
    assert raw / len(sent) < 8 and packed < raw


def test_a_tail_resumed_from_the_database_encodes_as_if_never_stopped():
    whole = h.HistoryTail(1, None)
    first = h.HistoryTail(1, None)
    for n in range(50):
        ts, power = T0 + n, float(n % 5) * 100
        snap = snapshot_of() if whole.wants_snapshot(ts) else None
        whole.add(h.READ, ts, power, None, snap)
        first.add(h.READ, ts, power, None, snap)
    first.written()
    resumed = h.HistoryTail(1, None, bytes(first.data))
    assert resumed.pending() == (b"", False, [])
    for n in range(50, 80):
        ts, power = T0 + n, float(n % 5) * 100
        whole.add(h.READ, ts, power, None, None)
        resumed.add(h.READ, ts, power, None, None)
    assert bytes(resumed.data) == bytes(whole.data)
    appended, reset, chunks = resumed.pending()
    assert (reset, chunks) == (False, [])
    assert bytes(first.data) + appended == bytes(whole.data)


def test_the_snapshot_record_restores_the_machine():
    machine = SessionStateMachine(CONFIG)
    for t, p, e in ((T0, 0.0, 10.0), (T0 + 1, 500.0, None), (T0 + 5, 520.0, 10.5)):
        machine.feed(t, p, e)
    tail = h.HistoryTail(1, None)
    tail.add(h.TICK, T0 + 6, snapshot=machine.snapshot())
    seeded = h.seed(h.decode(bytes(tail.data)), CONFIG)
    assert seeded.snapshot() == machine.snapshot()
    with pytest.raises(ValueError, match="needs the machine's snapshot"):
        h.HistoryTail(1, None).add(h.READ, T0, 1.0)


def test_a_stop_by_hand_replays_as_it_was_taken():
    """A person's stop (kind 7) ends the session as it stands; a stop stored
    before that kind existed (MANUAL_STOP) still applies the deadlines due
    before it first, as the runner did when it wrote it."""

    def replayed_reasons(stop_kind):
        tail = h.HistoryTail(1, None)
        tail.add(h.READ, T0, 900.0, None, snapshot_of())
        tail.add(h.READ, T0 + 5, 900.0)
        tail.add(h.READ, T0 + 6, 0.0)
        tail.add(stop_kind, T0 + 23)  # the stop delay ran out at T0 + 21
        _machine, closed = h.replay_runs([h.decode(bytes(tail.data))], CONFIG)
        return [(r.summary.end_reason, r.summary.end_time) for r in closed]

    # A stopping machine's session ends when its power dropped, either way.
    assert replayed_reasons(h.MANUAL_STOP) == [(POWER_DROP, T0 + 6)]
    assert replayed_reasons(h.PERSON_STOP) == [(MANUAL, T0 + 6)]


# -- the live engine against a stand-in database -------------------------------
def test_a_start_by_hand_takes_the_place_of_an_automatic_start_come_due_unseen():
    """The machine is starting when the broker goes down; a person starts a
    session 10 s later, long after the start delay ran out.  The runner
    writes no second session (the database allows one running per machine):
    the person's session is the one, live and in the replay."""
    run = Runner()
    run.clock.now += 1.0
    run.frame(1, "events/rpc", notify(T0, 900.0), T0)
    run.flush()
    run.engine.connection_down(1)
    run.clock.now += 10.0
    sid = run.db.person_start(1, T0 + 10)
    run.reconcile()
    run.flush()
    assert list(run.db.sessions) == [sid]
    assert run.engine.devices[1].session_id == sid
    run.engine.connection_up(1, session_present=True)
    run.clock.now += 5.0
    run.frame(1, "events/rpc", notify(T0 + 15, 0.0), T0 + 15)
    run.clock.now += 20.0
    run.engine.tick(run.batch)
    run.flush()
    summary = run.db.sessions[sid]["summary"]
    assert (summary.start_time, summary.end_time) == (T0, T0 + 15)
    assert replayed(run, 1)[1] == [] == live_automatic(run, 1)
    _machine, closed = h.replay_runs(run.db.history(1), CONFIG)
    assert [(r.summary, r.manual) for r in closed] == [(summary, True)]


STEP = st.one_of(
    st.tuples(
        st.just("read"),
        st.integers(1, 2),
        st.floats(0.2, 25.0),
        st.sampled_from([0.0, 2.0, 35.0, 80.0, 150.0, 600.0, 1300.5]),
    ),
    st.tuples(
        st.just("energy"), st.integers(1, 2), st.floats(0.2, 70.0), st.floats(0.0, 5.0)
    ),
    st.tuples(st.just("dup"), st.integers(1, 2)),
    st.tuples(st.just("stale"), st.integers(1, 2), st.floats(0.1, 30.0)),
    st.tuples(
        st.just("status"),
        st.integers(1, 2),
        st.floats(0.2, 10.0),
        st.sampled_from([0.0, 60.0, 700.0]),
    ),
    st.tuples(st.just("offline"), st.integers(1, 2)),
    st.tuples(st.just("online"), st.integers(1, 2)),
    st.tuples(st.just("wait"), st.floats(0.1, 40.0)),
    st.tuples(st.just("outage"), st.floats(1.0, 90.0)),
    st.just(("flush",)),
    st.just(("restart",)),
    st.tuples(st.just("manual_start"), st.integers(1, 2)),
    st.tuples(st.just("manual_stop"), st.integers(1, 2)),
    st.tuples(st.just("person_start"), st.integers(1, 2)),
    st.tuples(st.just("person_stop"), st.integers(1, 2)),
    st.just(("reconcile",)),
)


def person(run, kind, dev):
    """A person's start or stop half a second on, as the model writes it:
    at the meter's now (``_device_now``: the wall clock on the meter's clock,
    which the runner's device clock follows); a start is refused while a
    session runs."""
    run.clock.now += 0.5
    now = h.grid(run.engine.fleet.virtual_now(run.engine.devices[dev]))
    if kind.endswith("start"):
        run.db.person_start(dev, now)
    else:
        run.db.person_stop(dev, now)


def play(steps):
    run = Runner()
    meter_ts = {1: T0, 2: T0 + 0.37}
    energy = {1: 100.0, 2: 500.0}
    last = {}
    for step in steps:
        kind = step[0]
        if kind in ("read", "energy", "status"):
            dev, gap = step[1], step[2]
            meter_ts[dev] += gap
            run.clock.now += gap
            ts = round(meter_ts[dev], 2)
            if kind == "read":
                last[dev] = run.frame(dev, "events/rpc", notify(ts, step[3]), ts)
            elif kind == "energy":
                energy[dev] = round(energy[dev] + step[3], 3)
                last[dev] = run.frame(
                    dev, "events/rpc", notify(ts, None, energy[dev]), ts
                )
            else:  # a full status on the receive clock (no device time)
                status = json.dumps({"id": 0, "apower": step[3]})
                run.frame(dev, "status/pm1:0", status, ts + 0.04)
        elif kind == "dup" and step[1] in last:
            msg = last[step[1]]
            run.frame(
                step[1],
                msg.topic.split("/", 1)[1],
                msg.payload.decode(),
                msg.received_at,
                dup=True,
                mid=msg.mid,
            )
        elif kind == "stale":
            dev = step[1]
            ts = round(meter_ts[dev] - step[2], 2)
            run.frame(dev, "events/rpc", notify(ts, 900.0), meter_ts[dev])
        elif kind in ("offline", "online"):
            value = "true" if kind == "online" else "false"
            run.frame(step[1], "online", value, meter_ts[step[1]])
        elif kind == "wait":
            run.clock.now += step[1]
            run.engine.tick(run.batch)
        elif kind == "outage":
            run.engine.connection_down(1)
            run.clock.now += step[1]
            run.engine.tick(run.batch)  # nothing times out while nobody listens
            run.engine.connection_up(1, session_present=True)
        elif kind == "flush":
            run.flush()
        elif kind == "restart":
            run.flush()
            run.start()
        elif kind in ("manual_start", "manual_stop"):
            # A person acts while the runner's batch is written: the
            # runner reconciles at once (NOTIFY).
            run.flush()
            person(run, kind, step[1])
            run.reconcile()
        elif kind in ("person_start", "person_stop"):
            # A person acts in the middle of the runner's batch: it learns
            # of it at its next reconcile or when its write is refused.
            person(run, kind, step[1])
            run.raced = True
        elif kind == "reconcile":
            run.flush()
            run.reconcile()
    run.flush()
    return run


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps=st.lists(STEP, min_size=5, max_size=160))
# A person stops a session whose stop delay ran out while the runner had not
# ticked: it ends as the person's close, live and in the replay alike.
@example(
    steps=[
        ("stale", 1, 1.0),  # the first frame: 900 W, a second before T0
        ("read", 1, 2.0, 0.0),
        ("read", 2, 15.0, 0.0),
        ("manual_stop", 1),
    ]
)
# The catch-up tick before a person's start opens and closes a session of its
# own (the meter fell silent while starting): the person's stays the running one.
@example(
    steps=[
        ("read", 1, 1.0, 0.0),
        ("stale", 2, 20.0),
        ("manual_start", 2),
        ("read", 1, 1.0, 0.0),
        ("manual_start", 2),
    ]
)
def test_replaying_the_history_gives_back_the_live_sessions_exactly(steps):
    run = play(steps)
    # A person's start or stop in the middle of a batch is cured by a
    # resync: no machine is ever quarantined for it.
    assert run.quarantined == []
    run.reconcile()
    run.flush()
    for dev_id in (1, 2):
        # The runner and the database agree on the running session.
        sid, _start = run.db.running(dev_id)
        dev = run.engine.devices[dev_id]
        assert dev.session_id == sid
        assert (dev.state_machine.session is None) == (sid is None)
        # A recompute of the whole history with unchanged settings changes
        # nothing (the promise the recompute wizard makes).
        assert [c for c in recomputed(run, dev_id) if c.kind != "same"] == []
        machine, automatic = replayed(run, dev_id)
        if not run.raced:
            # Without a person racing the runner's write, the automatic
            # sessions come back exactly (one that a person closed in the
            # middle of a batch was closed automatically in the history:
            # the recompute leaves it alone, as it overlaps a person's).
            assert automatic == live_automatic(run, dev_id)
        # The machine ends where the live one stands.
        live_machine = dev.state_machine
        assert machine.state == live_machine.state
        assert (machine.session is None) == (live_machine.session is None)
        if machine.session is not None:
            assert machine.session.start_time == live_machine.session.start_time


def recomputed(run, dev_id):
    """The changes a recompute of all of ``dev_id``'s history would make."""
    machine, closed = h.replay_runs(run.db.history(dev_id), CONFIG)
    stored = [
        recompute.StoredSession(
            sid,
            s["summary"],
            not s["manual"] and s["summary"].end_reason != MANUAL,
        )
        for sid, s in run.db.sessions.items()
        if s["device"] == dev_id and s["summary"] is not None
    ]
    _sid, running_start = run.db.running(dev_id)
    plan = recompute.plan(
        closed, machine.session, stored, (0.0, T0 + 1e7), running_start
    )
    return plan.changes


def test_a_long_workshop_day_comes_back_exactly_across_restarts_and_outages():
    """The same, deterministically, over a busy day of two machines."""
    steps = []
    powers = [0.0, 0.0, 40.0, 650.0, 655.5, 120.0, 30.0, 2.0, 0.0, 1300.5]
    for n in range(6000):
        dev = 1 + n % 2
        steps.append(
            ("read", dev, 1.0 + (n % 3) * 0.25, powers[(n // 17) % len(powers)])
        )
        if n % 97 == 0:
            steps.append(("energy", dev, 0.3, 0.8))
        if n % 211 == 0:
            steps.append(("dup", dev))
        if n % 389 == 0:
            steps.append(("stale", dev, 3.0))
        if n % 500 == 250:
            steps.append(("outage", 30.0))
        if n % 1700 == 900:
            steps.append(("restart",))
        if n % 733 == 100:
            steps.append(("wait", 45.0))
        if n % 1300 == 640:
            steps.append(("offline", dev))
            steps.append(("online", dev))
        if n % 50 == 0:
            steps.append(("flush",))
    run = play(steps)
    for dev_id in (1, 2):
        _machine, automatic = replayed(run, dev_id)
        live = live_automatic(run, dev_id)
        assert len(live) > 20
        assert automatic == live
    assert run.db.chunks  # it was sealed into chunks along the way
