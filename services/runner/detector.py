"""SessionDetector: writes one machine's session ops as ``mqtt.session`` records.

Keeps primitives only (the machine's id and name): it never outlives the
transaction whose ``env`` it is handed, so no record, cursor or environment
crosses threads.  The state machine that decided the ops lives in the engine
(``services/engine/machine.py``); this is its database side.
"""

import logging

from ...models.mqtt_session_lifecycle import ORIGIN_RUNNER
from ..engine.batch import (
    CloseSession,
    ContinueSession,
    OpenSession,
    SessionWork,
    UpdateSession,
    closing,
)

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
    ) -> int | None:
        """Apply ``work.ops`` with ``env``; return the id of the session left open.

        ``running``: {session id: machine id} of the sessions running in this
        transaction (read once for a whole batch, kept up to date here).
        ``closed``: the ids of the sessions closed here are appended; the
        caller runs the close hook for them once all machines are written.
        Raises SessionsChanged rather than open a second running session.
        Sessions are written through the session lifecycle
        (models/mqtt_session_lifecycle.py)."""
        sessions = env["mqtt.session"]
        sid = work.session_id
        ops = work.ops
        for n, op in enumerate(ops):
            if type(op) is OpenSession:
                sid, done = self._open(sessions, op, closing(ops, n), running, closed)
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
        close: CloseSession | None,
        running: dict[int, int],
        closed: list[int],
    ) -> tuple[int, bool]:
        """The session ``op`` opens: its id, and whether it was written closed
        at once (its CloseSession follows in the same batch: it never runs,
        so it cannot collide with a person's session running meanwhile)."""
        existing = sessions.search(
            [("device_id", "=", self.device_id), ("start_ts", "=", op.start_ts)],
            limit=1,
        )
        if existing:  # written before a crash, redelivered since
            # A person may have closed it meanwhile: it is not reopened.
            return existing.id, existing.state != "running"
        if close is None and self.device_id in running.values():
            # A person's session runs that the engine does not know of.
            raise SessionsChanged(f"machine {self.device_id}: a session runs already")
        session = sessions._open_session(
            self.device_id,
            op.start_ts,
            "manual" if op.manual else "power",
            summary=close.summary if close is not None else None,
            notify=False,
        )
        if close is not None:
            closed.append(session.id)
        return session.id, close is not None
