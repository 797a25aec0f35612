"""Session detection: the public module (DESIGN.md, "The session state machine").

Pure (standard library only, no Odoo): the bridge runs one
``SessionStateMachine`` per device on its worker thread; tests and history
recomputation (``replay``) run the same code without a server.  Time is the
device's clock in float seconds; the machine never reads a wall clock, so the
same inputs always give the same events.  The machine lives in
``session_machine.py`` and is re-exported here.

Choices made where DESIGN.md and the brief are silent:

* A session that is in ``stopping`` when it closes, for any reason (stop
  debounce, timeout, offline, manual stop), ends at ``t_stop``: the low-power
  period after the drop belongs to the session only if power comes back.
  While ``stopping``, the open session reports durations and energy up to
  ``t_stop`` for the same reason.
* The timeout ends a session at the last *activity*, the last reading or a
  manual start, whichever is later, so a manual session never ends before it
  began.  The timeout runs only in ``starting`` and in a session; an idle
  machine keeps its held power however long it is silent.
* Deadlines due at the same time: the debounce (start or stop) goes first,
  then the timeout.
* ``offline`` and ``manual_*`` inputs older than the processed time are
  applied at the processed time (clock skew must not lose a Last Will or a
  button press).  A reading older than the last applied event (a reading, a
  fired deadline, an offline, an acting manual input) is stale; a ``tick``
  that fired nothing does not make an in-flight reading stale, so a watchdog
  may tick freely.
* ``manual_start`` during ``starting`` opens the session at once but keeps
  ``start_time = t_start``: the machine has been on since then.  After
  ``manual_stop`` the machine is idle; only a later reading >= the standby
  threshold starts a new (debounced) session.
* ``reconfigure``: an open session continues; the new thresholds apply from
  the next input on; pending deadlines keep their reference times (t_start,
  t_stop, last activity) with the new durations, and one already past fires
  at the next input or tick, dated at the last applied event.
* Energy combines the meter counter with the power integral, because a
  Shelly publishes ``aenergy.total`` only about once a minute while power
  deltas come on every change (the counter alone gives a 40 s session 0 Wh
  and cuts off whatever was used after a session's last sample).  A counter
  *sample* is an ``energy_wh`` passed to ``feed``; the bridge passes one only
  when the frame carried a fresh sample.  The rule:

  - I(t) is the cumulative integral of the held power over device time, in
    Wh, never reset between sessions: I(t) = I(last) + held * (t - last) /
    3600 for t >= the last reading; unknown power (None) adds 0.  I is stored
    at each sample's time, since a sample can predate the session.
  - Per session, C_first at t_first is the latest sample at or before the
    start (a sample on the starting reading counts), or if none the first
    sample inside the session; C_last at t_last is the latest sample inside
    it, initially C_first.
  - energy(up to end) = (C_last - C_first) + (I(end) - I(t_last))
    - (I(start) - I(t_first)): the counter covers [t_first, t_last], the
    integral the rest of [start, end].  With no sample, or only the one held
    at the start, this is I(end) - I(start).
  - A counter decrease inside the session (``starting`` included: a meter
    reset or replacement) makes it I(end) - I(start) for good.
  - A session closed while ``stopping`` ends at t_stop and uses only samples
    up to t_stop (its energy is frozen there, as is the open session's
    view); a decrease seen while ``stopping`` only matters if the session
    continues.
  - Choice: when the covered part (C_last - C_first) - (I(start) - I(t_first))
    is negative (the counter rose less over [t_first, t_last] than the power
    integral says for the head [t_first, start] alone, a meter disagreeing
    with itself), it counts as 0 and the tail I(end) - I(t_last) is kept, so
    non-negative power never gives negative energy.
  - Choice: the held power is forgotten (adds 0 from then on) at an offline
    notice's time and, on a timeout, at the last activity (where the timed
    out session ends), so such gaps add nothing to a later session's head.
  - Snapshots are version 2.  A version-1 snapshot still restores: its
    session integral becomes I, its running session (if any) takes the plain
    integral, a frozen ``stopping`` energy stays, and its held counter sample
    is dropped (version 1 did not store I at the sample).
* Event order for one transition: ``StateChanged`` first, then the
  ``SessionOpened``/``SessionClosed`` it caused.  ``StateChanged.power_w`` is
  None after a timeout or offline (the power is forgotten).
* ``feed``/``tick``/``offline``/``manual_*`` raise ``ValueError`` for a
  non-finite time, power or counter: the parsers reject such frames, so one
  arriving here is a bug to surface, not data.
"""

from datetime import UTC, datetime

from .session_machine import (
    MANUAL,
    OFFLINE,
    POWER_DROP,
    SNAPSHOT_VERSION,
    TIMEOUT,
    DetectorConfig,
    SessionClosed,
    SessionOpened,
    SessionStateMachine,
    SessionSummary,
    State,
    StateChanged,
)

__all__ = [
    "MANUAL",
    "OFFLINE",
    "POWER_DROP",
    "SNAPSHOT_VERSION",
    "TIMEOUT",
    "DetectorConfig",
    "SessionClosed",
    "SessionOpened",
    "SessionStateMachine",
    "SessionSummary",
    "State",
    "StateChanged",
    "SessionDetector",
    "replay",
]


def replay(readings, config, until=None):
    """Recompute sessions from readings in arrival order, as the live machine would.

    ``readings`` are ``(ts, power_w)`` or ``(ts, power_w, energy_wh)``; stale
    ones are ignored.  Before each reading the machine is ticked to its time,
    at the end to ``until`` when given.  Returns the closed sessions in order
    and, last, the open one (``end_time`` None) if any.  Used to recompute
    history after a threshold change.
    """
    machine = SessionStateMachine(config)
    sessions = []
    for reading in readings:
        ts = reading[0]
        energy = reading[2] if len(reading) > 2 else None
        for event in machine.tick(ts) + machine.feed(ts, reading[1], energy):
            if type(event) is SessionClosed:
                sessions.append(event.summary)
    if until is not None:
        sessions.extend(
            event.summary
            for event in machine.tick(until)
            if type(event) is SessionClosed
        )
    current = machine.session
    if current is not None:
        sessions.append(current)
    return sessions


# ---------------------------------------------------------------------------
# SessionDetector: the env-passing wrapper of one device.
# ---------------------------------------------------------------------------


def _utc(ts):
    """Device time -> naive UTC datetime, the way Odoo stores Datetime fields."""
    return datetime.fromtimestamp(ts, tz=UTC).replace(tzinfo=None)


class SessionDetector:
    """One device's machine plus the ``mqtt.session`` it has open.

    Keeps primitives only (device id, name, the machine, a session id): it
    lives in the runner's worker thread for months, while every write gets
    the fresh ``env`` of the transaction at hand, so no record, cursor or
    environment outlives its transaction.  Still no Odoo import: ``env`` is
    used, not imported.

    The runner collects ``ops`` while it processes messages -- ``("open",
    {"start_ts", "manual"})``, ``("progress", SessionSummary)`` and
    ``("close", SessionSummary)`` -- and ``apply`` turns them into records in
    its flush transaction.  ``apply`` returns the id of the session left
    open; the runner adopts it only after the commit (``session_id``).
    """

    __slots__ = ("device_id", "name", "machine", "session_id")

    def __init__(self, device_id, name, config, snapshot=None, session_id=None):
        self.device_id = device_id
        self.name = name
        self.machine = (
            SessionStateMachine.restore(config, snapshot)
            if snapshot
            else SessionStateMachine(config)
        )
        self.session_id = session_id if self.machine.session is not None else None

    def apply(self, env, ops, running=None):
        """Apply ``ops`` to ``mqtt.session`` with ``env``; return the open id.

        ``running``: ids of sessions known to be running in this transaction
        (read once for a whole batch); None reads the state here.
        """
        sessions = env["mqtt.session"]
        sid = self.session_id
        for op, data in ops:
            if op == "open":
                sid = self._open(sessions, data)
                if running is not None:
                    running.add(sid)
                continue
            if sid:
                session = sessions.browse(sid)
                if running is None:
                    is_running = session.exists() and session.state == "running"
                else:
                    is_running = sid in running
                # A user may have closed it by hand meanwhile: never reopen it.
                if is_running:
                    session.write(self.values(data))
                    if op == "close":
                        if running is not None:
                            running.discard(sid)
                        # The ORM writes lazily: the database must see it closed
                        # before the next session of the device is inserted.
                        session.flush_recordset()
            if op == "close":
                sid = None
        return sid

    def _open(self, sessions, data):
        start = data["start_ts"]
        existing = sessions.search(
            [("device_id", "=", self.device_id), ("start_ts", "=", start)], limit=1
        )
        if existing:  # written before a crash, redelivered since
            return existing.id
        return sessions.create(
            {
                "device_id": self.device_id,
                "start_ts": start,
                "start_time": _utc(start),
                "last_update_ts": start,
                "origin": "manual" if data["manual"] else "power",
            }
        ).id

    @staticmethod
    def values(summary):
        """mqtt.session values of a (running or closed) SessionSummary."""
        vals = {
            "start_ts": summary.start_time,
            "start_time": _utc(summary.start_time),
            "standby_duration_s": summary.standby_duration_s,
            "working_duration_s": summary.working_duration_s,
            "energy_wh": summary.energy_wh,
            "last_update_ts": summary.start_time + summary.total_duration_s,
        }
        if summary.end_time is not None:
            vals.update(
                {
                    "state": "closed",
                    "end_ts": summary.end_time,
                    "end_time": _utc(summary.end_time),
                    "end_reason": summary.end_reason,
                }
            )
        return vals
