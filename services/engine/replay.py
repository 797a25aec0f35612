"""History recomputed: readings in, the sessions the live engine would have made.

The same ``SessionStateMachine`` as the runner's, fed in arrival order and
ticked to each reading's time first, as the runner's watchdog does.
"""

from collections.abc import Iterable

from .machine import SessionStateMachine
from .types import DetectorConfig, SessionClosed, SessionSummary


def replay(
    readings: Iterable[tuple[float, float] | tuple[float, float, float | None]],
    config: DetectorConfig,
    until: float | None = None,
) -> list[SessionSummary]:
    """Recompute sessions from readings in arrival order, as the live machine would.

    ``readings`` are ``(ts, power_w)`` or ``(ts, power_w, energy_wh)``; stale
    ones are ignored.  Before each reading the machine is ticked to its time,
    at the end to ``until`` when given.  Returns the closed sessions in order
    and, last, the open one (``end_time`` None) if any.
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
