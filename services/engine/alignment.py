"""A machine's session kept in line with the database.

The database is the truth about sessions: a person may have started or
stopped one by hand, while no runner ran or in the middle of a batch.  When
the engine (re)loads a machine (``Engine.upsert_device``) or resyncs a
refused batch, ``align`` brings the machine's state machine and the batch
in line with the running session the database holds.  Pure.
"""

from collections.abc import Callable

from .batch import Batch, ContinueSession, OpenSession
from .device import DeviceConfig, DeviceRuntime
from .history import GRID_S, MANUAL_START, PERSON_STOP, TICK, grid
from .types import Event, SessionOpened

ApplyEvents = Callable[[DeviceRuntime, list[Event], Batch], None]


def align(
    dev: DeviceRuntime,
    cfg: DeviceConfig,
    batch: Batch,
    now: float,
    apply_events: ApplyEvents,
) -> bool:
    """Bring ``dev`` in line with the database's running session of ``cfg``
    at device time ``now``; whether anything had to change.  Events that
    must be written go to ``batch`` through ``apply_events``."""
    db_id, db_start = cfg.running_session_id, cfg.running_start_ts
    machine = dev.state_machine
    if dev.session_id == db_id and (db_id is None) == (machine.session is None):
        return False
    unwritten = _unwritten(batch, dev)
    if unwritten and db_id is None:
        return False  # ours, opened in this batch: the database has not seen it yet
    now = grid(now)
    if machine.now is not None and now <= machine.now:
        # A person's input comes after whatever the machine processed: two
        # of them never share an instant, so neither do their sessions'
        # starts (the database keeps one per start).
        now = grid(machine.now + GRID_S)
    if machine.session is not None:
        # Our session is gone from the database (closed by hand) or another
        # one is running there: the database wins.  One the database holds
        # ends without a write (the person's close is there); one opened in
        # this batch and not yet written ends here, closed by that person,
        # and is written closed: it did happen.
        closed = dev.take(PERSON_STOP, now)
        if unwritten:
            apply_events(dev, closed, batch)
        dev.session_id = None
    if db_id:
        start = grid(db_start) if db_start is not None else now
        # What was due before the person's start happens first, as the
        # watchdog would have had it (a session it closes is written).
        due = dev.take(TICK, start)
        if machine.session is not None:
            # Its start came due unseen (an outage, a late tick): the
            # person's session, already in the database, is that session.
            due = [e for e in due if not isinstance(e, SessionOpened)]
        apply_events(dev, due, batch)
        work = batch.sessions.get(dev.id)
        if work is not None and work.ops:
            # The tick wrote a session of its own (opened and closed before
            # the person's start): the ops after it are the person's.
            work.ops.append(ContinueSession(db_id))
        events = dev.take(MANUAL_START, start)
        dev.session_id = db_id
        # The session exists already: keep only the state changes.
        apply_events(
            dev, [e for e in events if not isinstance(e, SessionOpened)], batch
        )
        dev.progress_due = True
    return True


def _unwritten(batch: Batch, dev: DeviceRuntime) -> bool:
    """Whether the machine's open session was opened in this batch (so the
    database has no row of it yet)."""
    session = dev.state_machine.session
    work = batch.sessions.get(dev.id)
    if session is None or work is None:
        return False
    start = session.start_time
    return any(type(op) is OpenSession and op.start_ts == start for op in work.ops)
