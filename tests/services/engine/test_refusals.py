"""A batch the database refuses: what the engine does when a person started
or stopped a session while the runner's batch was being made.

Driven against the stand-in database (``standin.py``), which enforces both
unique indexes of ``mqtt_session`` and rolls a refused batch back; the
runner's flush policy (resync at most ``MAX_RESYNCS`` times, then each
machine apart) is followed as ``services/runner/flush.py`` has it.
The property test over random traffic with such people is in
``test_history.py``.
"""

from ....services.engine import history as h
from ....services.engine.batch import OpenSession, UpdateSession
from ....services.engine.types import MANUAL, POWER_DROP
from .standin import MAX_RESYNCS, T0, Refused, Runner, notify


def read(run, dev, dt, watts):
    run.clock.now = 1000.0 + dt
    run.frame(dev, "events/rpc", notify(T0 + dt, watts), T0 + dt)


def test_a_finished_session_of_the_batch_is_kept_when_a_person_starts_one():
    """The machine runs a session, stops, starts again, all in one batch;
    a person presses Start meanwhile.  The refused batch is resynced: the
    finished session is written as it was, the one it opened after is
    written closed where the person's takes over, and the person's runs."""
    run = Runner()
    for dt, watts in [(0, 0.0), (10, 500.0), (20, 0.0), (40, 0.0), (50, 600.0)]:
        read(run, 1, dt, watts)
        read(run, 2, dt, watts)
    read(run, 1, 55, 600.0)
    person = run.db.person_start(1, h.grid(T0 + 55.5))
    read(run, 2, 55, 600.0)
    run.flush()
    assert run.db.refusals == 1 and run.resyncs == 1
    assert run.quarantined == []
    first, second, third = sorted(
        (s for s in run.db.sessions.values() if s["device"] == 1),
        key=lambda s: s["start"],
    )
    assert (first["start"], first["summary"].end_time) == (T0 + 10, T0 + 20)
    assert first["summary"].end_reason == POWER_DROP
    assert second["start"] == T0 + 50
    assert second["summary"].end_reason == MANUAL
    assert third is run.db.sessions[person] and third["summary"] is None
    assert third["start"] >= second["summary"].end_time
    assert run.engine.devices[1].session_id == person
    # The other machine was written in the same flush.
    assert run.engine.devices[2].session_id == run.db.running(2)[0] is not None


def test_a_start_moved_by_an_earlier_frame_then_stop_and_start_by_hand():
    """The reported reproduction: a person starts S1; a frame dated before
    the runner adopts S1 moves its start; the person stops S1 and starts S3
    before the runner hears of either.  The runner adopts S3 at a start of
    its own: nothing is refused for good, nothing quarantined."""
    run = Runner()
    read(run, 1, 0, 0.0)
    s1 = run.db.person_start(1, h.grid(T0 + 1.0))
    read(run, 1, 0.5, 900.0)  # dated before S1's start: the machine was starting
    run.flush()
    run.reconcile()
    run.flush()
    assert run.db.sessions[s1]["start"] == T0 + 0.5  # moved to the starting time
    read(run, 1, 3, 900.0)
    run.db.person_stop(1, h.grid(T0 + 4))
    s3 = run.db.person_start(1, h.grid(T0 + 4.5))
    read(run, 1, 5, 900.0)
    run.flush()
    run.reconcile()
    read(run, 1, 8, 900.0)
    run.flush()
    assert run.quarantined == []
    starts = [s["start"] for s in run.db.sessions.values()]
    assert len(starts) == len(set(starts)) == 2
    assert run.db.running(1)[0] == s3 == run.engine.devices[1].session_id


def test_a_refusal_no_resync_cures_stays_with_its_machine(monkeypatch):
    """Refused for a reason the database's state does not explain: resynced
    MAX_RESYNCS times (the batch not growing), then the machine's part is
    quarantined and the other machine's is written."""
    run = Runner()
    for dt, watts in [(0, 0.0), (10, 500.0), (14, 500.0)]:
        read(run, 1, dt, watts)
        read(run, 2, dt, watts)
    sizes = []
    write_machine = run.db._write_machine

    def refuse_machine_1(sessions, batch, dev_id):
        if dev_id == 1:
            sizes.append(len(batch.sessions[1].ops))
            raise Refused(1, "mqtt_session_device_start_unique")
        return write_machine(sessions, batch, dev_id)

    monkeypatch.setattr(run.db, "_write_machine", refuse_machine_1)
    run.flush()
    assert run.resyncs == MAX_RESYNCS
    assert sizes == [2] * (MAX_RESYNCS + 2)  # tried, resynced, then apart
    assert run.quarantined == [1]
    assert run.db.running(1) == (None, None)
    assert run.db.running(2)[1] == T0 + 10
    # The quarantined machine is reloaded from the database and reads on.
    monkeypatch.setattr(run.db, "_write_machine", write_machine)
    for dt in (20, 30):
        read(run, 1, dt, 700.0)
    run.flush()
    assert run.db.running(1)[1] == T0 + 20


def test_sealing_again_adds_no_second_progress():
    run = Runner()
    for dt, watts in [(0, 0.0), (10, 500.0), (14, 500.0)]:
        read(run, 1, dt, watts)
    run.engine.seal(run.batch)
    ops = list(run.batch.sessions[1].ops)
    assert [type(op) for op in ops] == [OpenSession, UpdateSession]
    run.engine.seal(run.batch)
    assert run.batch.sessions[1].ops == ops


def test_the_work_keeps_the_session_it_began_with():
    """A person's start reaching the engine in the middle of a batch must
    not change which session the batch's earlier ops apply to."""
    run = Runner()
    for dt, watts in [(0, 0.0), (10, 500.0), (14, 500.0)]:
        read(run, 1, dt, watts)
    run.flush()
    auto = run.engine.devices[1].session_id
    read(run, 1, 20, 0.0)  # stopping; the stop delay runs
    run.clock.now += 20.0
    run.engine.tick(run.batch)  # closed by power drop in this batch
    person = run.db.person_start(1, h.grid(T0 + 41))
    run.reconcile()  # the engine hears of it before the flush
    work = run.batch.sessions[1]
    assert work.session_id == auto
    run.flush()
    assert run.db.sessions[auto]["summary"].end_reason == POWER_DROP
    assert run.db.running(1)[0] == person == run.engine.devices[1].session_id
    assert run.quarantined == []
