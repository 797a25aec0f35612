"""SessionDetector: writes one machine's session ops as ``mqtt.session`` records.

Keeps primitives only (the machine's id and name): it never outlives the
transaction whose ``env`` it is handed, so no record, cursor or environment
crosses threads.  The state machine that decided the ops lives in the engine
(``services/engine/machine.py``); this is its database side.
"""

import logging
from typing import cast

from ...models.mqtt_session_lifecycle import ORIGIN_RUNNER
from ..engine.batch import (
    CloseSession,
    ContinueSession,
    OpenSession,
    SessionOp,
    SessionWork,
    UpdateSession,
    closing,
)
from ..engine.types import SessionSummary

_logger = logging.getLogger(__name__)


class SessionsChanged(Exception):
    """The machine's sessions changed in the database since the engine
    decided (a person started one): the batch must be resynced first."""


class SessionDetector:
    """The database side of one machine's sessions."""

    __slots__ = ("device_id", "name")

    def __init__(self, device_id: int, name: str) -> None:
        self.device_id = device_id
        self.name = name

    def apply(
        self,
        env,
        work: SessionWork,
        running: dict[int, int],
        closed: list[int],
        found: dict[tuple[int, float], tuple[int, str]],
    ) -> int | None:
        """Apply ``work.ops`` with ``env``; return the id of the session left open.

        ``running``: {session id: machine id} of the sessions running in this
        transaction (read once for a whole batch, kept up to date here).
        ``closed``: the ids of the sessions closed here are appended; the
        caller runs the close hook for them once all machines are written.
        ``found``: {(machine id, start): (id, state)} of the sessions the
        batch's opens find in the database (read once for a whole batch).
        Raises SessionsChanged rather than open a second running session.
        Sessions are written through the session lifecycle
        (models/mqtt_session_lifecycle.py)."""
        sessions = env["mqtt.session"]
        sid = work.session_id
        ops = work.ops
        folded = 0  # progress written with the create it follows
        for n, op in enumerate(ops):
            if folded:
                folded -= 1
                continue
            if type(op) is OpenSession:
                close = closing(ops, n)
                if close is None:
                    folded = _progress_after(ops, n)
                summary = None
                if close is not None:
                    summary = close.summary
                elif folded:
                    summary = cast(UpdateSession, ops[n + folded]).summary
                sid, done = self._open(
                    sessions, op, summary, close is not None, running, closed, found
                )
                if not done:
                    running[sid] = self.device_id
                continue
            if type(op) is ContinueSession:
                sid = op.session_id
                continue
            # A person may have closed it meanwhile: never reopen it.
            if sid and sid in running:
                session = sessions.browse(sid)
                if isinstance(op, CloseSession):
                    del running[sid]
                    session._close_session(op.summary, ORIGIN_RUNNER, notify=False)
                    closed.append(sid)
                    if any(type(later) is OpenSession for later in ops[n + 1 :]):
                        # The ORM writes lazily: the database must see it
                        # closed before the machine's next session is
                        # inserted (one running session per machine).  Its
                        # computed fields wait for the batch's one flush.
                        session.flush_recordset(["state"])
                elif isinstance(op, UpdateSession):
                    session._update_session(op.summary)
            if type(op) is CloseSession:
                sid = None
        # One a person closed meanwhile is not left open.
        return sid if sid in running else None

    def _open(
        self,
        sessions,
        op: OpenSession,
        summary: SessionSummary | None,
        closes: bool,
        running: dict[int, int],
        closed: list[int],
        found: dict[tuple[int, float], tuple[int, str]],
    ) -> tuple[int, bool]:
        """The session ``op`` opens, created with ``summary`` (its close's or
        its progress in this batch): its id, and whether it was written closed
        at once (``closes``: its CloseSession follows in the same batch: it
        never runs, so it cannot collide with a person's session running
        meanwhile)."""
        hit = found.get((self.device_id, op.start_ts))
        if hit:  # written before a crash, redelivered since
            sid, state = hit
            # A person may have closed it meanwhile: it is not reopened.
            if state != "running":
                return sid, True
            if summary is not None and not closes:
                sessions.browse(sid)._update_session(summary)  # its progress
            return sid, False
        if not closes and self.device_id in running.values():
            # A person's session runs that the engine does not know of.
            raise SessionsChanged(f"machine {self.device_id}: a session runs already")
        session = sessions._open_session(
            self.device_id,
            op.start_ts,
            "manual" if op.manual else "power",
            summary=summary,
            notify=False,
        )
        if closes:
            closed.append(session.id)
        return session.id, closes


def _progress_after(ops: list[SessionOp], n: int) -> int:
    """How many UpdateSessions follow ``ops[n]`` directly: the last of them
    is what the session is created with (one write instead of two)."""
    count = 0
    while n + count + 1 < len(ops) and type(ops[n + count + 1]) is UpdateSession:
        count += 1
    return count
