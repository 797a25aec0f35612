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
# SessionDetector: the env-passing Odoo wrapper (added by another engineer).
# It keeps only primitives (device id, name), wraps one SessionStateMachine
# and receives a fresh ``env`` on every call to write ``mqtt.session`` records.
# Nothing above this line may import odoo.
# ---------------------------------------------------------------------------
