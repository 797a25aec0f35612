"""The batch: the one contract between the engine and the database writer.

The engine collects what a run of messages means into a ``Batch``; when a
flush is due it seals it (``Engine.seal``): every dirty machine then has one
``LiveRow`` and every session change is a typed op with the session it
applies to.  The writer (``services/runner/writer.py``) reads the batch and
nothing else of the engine, writes it in one transaction and returns the ids
of the sessions left open (``WriteResult``); the engine adopts them after the
commit (``Engine.committed``).  Pure (standard library only).
"""

from collections import Counter, defaultdict
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from .history import Chunk
from .types import SessionSummary


class Message(Protocol):
    """What the engine reads of a message: the fields of the transport's one
    message type, ``InboundMessage`` (``services/mqtt/inbound.py``), which
    the engine does not import (it imports none of the transport)."""

    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def qos(self) -> int: ...
    @property
    def mid(self) -> int: ...
    @property
    def dup(self) -> bool: ...
    @property
    def received_at(self) -> float: ...


# -- session ops ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OpenSession:
    """A session opened at ``start_ts`` (device time) by power or by a person."""

    start_ts: float
    manual: bool


@dataclass(frozen=True, slots=True)
class UpdateSession:
    """The open session's durations and energy so far."""

    summary: SessionSummary


@dataclass(frozen=True, slots=True)
class CloseSession:
    """The open session closed (``summary.end_time``, ``summary.end_reason``)."""

    summary: SessionSummary


@dataclass(frozen=True, slots=True)
class ContinueSession:
    """The ops after this one continue ``session_id``, a session already in
    the database (a person's, started while the machine was idle)."""

    session_id: int


SessionOp = OpenSession | UpdateSession | CloseSession | ContinueSession


def closing(ops: list[SessionOp], n: int) -> CloseSession | None:
    """The CloseSession of the session ``ops[n]`` opens, when it is in the
    same batch (only its progress between): that session never runs."""
    for op in ops[n + 1 :]:
        if type(op) is CloseSession:
            return op
        if type(op) is not UpdateSession:
            return None
    return None


@dataclass(slots=True)
class SessionWork:
    """One machine's session ops of a batch, in order.

    ``session_id``: the database id of the session the first op continues
    (None: no session is open there yet), taken when the machine's work of
    this batch begins: a person's start or stop that reaches the engine later
    in the batch must not change what the earlier ops apply to."""

    device_id: int
    name: str
    ops: list[SessionOp] = field(default_factory=list)
    session_id: int | None = None


# -- rows -----------------------------------------------------------------------
class LiveRow(NamedTuple):
    """What the board shows of one machine, and what a restart resumes from."""

    device_id: int
    state: str
    power_w: float
    energy_wh: float | None
    last_message_ts: float | None
    online: bool | None
    meter_error: str | None
    rate_limited: bool
    fault: str | None
    detector_snapshot: dict
    parser_snapshot: dict | None
    shelly_id: str | None
    session_id: int | None
    # The power history: bytes to append to the stored tail (the whole tail
    # when ``history_reset``), None when no history is kept.
    history_append: bytes | None = None
    history_reset: bool = False


# What a raw log row says of its frame (``RawRow.status``): applied, not a
# reading (or a stale copy), refused, for no machine, over the machine's cap,
# a copy of an applied reading, or met an unexpected error.
RAW_STATUSES = (
    "reading",
    "not_reading",
    "rejected",
    "unmatched",
    "rate_limited",
    "duplicate",
    "error",
)


class RawRow(NamedTuple):
    """One row for the raw message log (``mqtt.message``)."""

    connection_id: int
    device_id: int | None
    company_id: int | None
    msg: Message
    status: str
    detail: str | None = None
    device_ts: float | None = None
    power_w: float | None = None


@dataclass(slots=True)
class ConnectionRow:
    """One owned broker connection's line of a batch: the fencing token the
    write must still hold, the form's runtime fields, and the packet ids
    committed but maybe not yet acknowledged (its message counters are
    ``Batch.stats``)."""

    token: str
    node: str
    state: str
    last_error: object
    connected_at: float | None
    committed_mids: list[int]
    queue_depth: int = 0


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What the writer hands back: {machine id: its open session id or None}
    for every machine whose sessions it wrote."""

    session_ids: dict[int, int | None]


class Batch:
    """Everything one flush writes in one transaction, and the acks after it."""

    def __init__(self) -> None:
        # (connection id, message, machine id or None) in arrival order
        self.acks: list[tuple[int, Message, int | None]] = []
        self.raw_rows: list[RawRow] = []
        self.sessions: dict[int, SessionWork] = {}
        self.dirty: set[int] = set()  # machines whose live row is due
        self.stats: defaultdict[int, Counter] = defaultdict(Counter)
        self.discovered: dict[tuple[int, str], dict] = {}
        self.done_mids: defaultdict[int, set[int]] = defaultdict(set)
        self.started: float | None = None
        self.problem_rows = 0
        # Machines whose running session's progress this batch already
        # carries: sealing again (a retry) must not grow the batch.
        self.progressed: set[int] = set()
        # Filled when the batch is sealed:
        self.live: dict[int, LiveRow] = {}
        self.history_chunks: list[Chunk] = []
        self.connections: dict[int, ConnectionRow] = {}
        self.notify: list[int] | None = None
        # Machines the writer must not touch (a write of theirs failed):
        # their frames are logged as errors and acknowledged.
        self.quarantined: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.acks)

    @property
    def empty(self) -> bool:
        return not (self.acks or self.dirty or self.sessions or self.discovered)

    def session_work(
        self, device_id: int, name: str, session_id: int | None
    ) -> SessionWork:
        """The machine's work of this batch; ``session_id``: the database id
        of the session its machine holds now, kept when the work begins."""
        work = self.sessions.get(device_id)
        if work is None:
            work = self.sessions[device_id] = SessionWork(
                device_id, name, session_id=session_id
            )
        return work

    def device_ids(self) -> set[int]:
        """Every machine this batch writes something for."""
        ids = set(self.live) | set(self.sessions) | self.dirty
        ids.update(r.device_id for r in self.raw_rows if r.device_id is not None)
        ids.update(d for _c, _m, d in self.acks if d is not None)
        return ids

    def drop_connections(
        self, connection_ids: Iterable[int], devices: Container[int]
    ) -> None:
        """Forget what belongs to connections we no longer own (their messages
        stay unacknowledged, so the new owner gets them)."""
        lost = set(connection_ids)
        self.acks = [a for a in self.acks if a[0] not in lost]
        self.raw_rows = [r for r in self.raw_rows if r.connection_id not in lost]
        for dev_id in list(self.sessions):
            if dev_id not in devices:
                del self.sessions[dev_id]
        self.dirty = {d for d in self.dirty if d in devices}
        self.live = {d: row for d, row in self.live.items() if d in devices}
        self.history_chunks = [c for c in self.history_chunks if c.device_id in devices]
        for conn_id in lost:
            self.stats.pop(conn_id, None)
            self.done_mids.pop(conn_id, None)
            self.connections.pop(conn_id, None)
        self.discovered = {k: v for k, v in self.discovered.items() if k[0] not in lost}

    def quarantine(self, device_id: int, reason: str) -> None:
        """Leave out what this batch would write for ``device_id``: its session
        ops and live row go; its frames stay (acknowledged, logged as errors)."""
        self.quarantined[device_id] = reason
        self.sessions.pop(device_id, None)
        self.live.pop(device_id, None)
        self.dirty.discard(device_id)
        self.raw_rows = [r for r in self.raw_rows if r.device_id != device_id]
        self.history_chunks = [
            c for c in self.history_chunks if c.device_id != device_id
        ]
