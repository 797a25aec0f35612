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
* Energy by counter takes the spec literally: a counter value seen before
  the session start is the counter at start even when no reading inside the
  session carries one (the session then gets 0 Wh, not the power integral);
  a counter decrease seen while ``stopping`` only matters if the session
  continues.
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
