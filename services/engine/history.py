"""A machine's power history: every input its state machine took, kept compactly.

What is kept is exactly what the state machine was fed, in order: each
accepted reading (device time, power, and the energy counter when sent), the
meter's online/offline notices, a person's manual start and stop, and each
watchdog tick that changed something.  A redelivered or stale frame is not
an input, so it adds nothing; idle time is kept like the rest, so a lower
threshold can find sessions where none were.  Replaying it through the same
state machine gives back the same sessions (``replay_history``).

Inputs are on a grid of 1 ms and 1 mW / 1 mWh (``grid``): the engine feeds the
state machine the gridded values, so what is stored here is what it saw, to
the bit.  Records are delta-encoded varints (a reading at a steady pace is 3
to 6 bytes); a machine's newest records are its *tail* (kept with the machine
in the database); once the tail reaches ``TAIL_BYTES`` or spans
``TAIL_SPAN_S`` it is sealed into a zlib-compressed *chunk*.  Every tail, and
so every chunk, starts with the state machine's snapshot (a SNAP record), so a
replay can begin at any chunk.  Pure (standard library only).
"""

import math
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from .machine import (
    SNAPSHOT_FLAGS,
    SNAPSHOT_KEYS,
    SNAPSHOT_VERSION,
    SessionStateMachine,
)
from .types import (
    DetectorConfig,
    Event,
    SessionClosed,
    SessionOpened,
    SessionSummary,
    State,
)

# Record kinds (low 3 bits of a record's first byte).
READ = 0
OFFLINE = 1
ONLINE = 2
MANUAL_START = 3
MANUAL_STOP = 4  # written before 2026-12-06: due deadlines applied first
TICK = 5
SNAP = 6
PERSON_STOP = 7  # a person's stop, applied to the machine as it stands
KIND_NAMES = (
    "read",
    "offline",
    "online",
    "manual_start",
    "manual_stop",
    "tick",
    "snap",
    "person_stop",
)
_HAS_ENERGY = 0x08
_SAME_POWER = 0x10

TAIL_BYTES = 1024
TAIL_SPAN_S = 6 * 3600.0
MILLI = 1000.0
GRID_S = 1 / MILLI  # one step of the time grid


def grid(value: float) -> float:
    """``value`` on the history's grid (1 ms, 1 mW, 1 mWh): what is stored is
    exactly what the state machine is fed."""
    return round(value * MILLI) / MILLI


class Record(NamedTuple):
    """One input of a machine's state machine; ``snapshot`` only for SNAP."""

    kind: int
    ts: float
    power_w: float | None = None
    energy_wh: float | None = None
    snapshot: dict | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """A sealed run of records of one machine, compressed."""

    device_id: int
    company_id: int | None
    first_ts: float
    last_ts: float
    count: int
    data: bytes


# -- varints ---------------------------------------------------------------------
def _put(out: bytearray, value: int) -> None:
    """A signed int as a zigzag varint."""
    value = (value << 1) ^ (value >> 63)
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _get(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def _ints(
    ts: float, power_w: float | None, energy_wh: float | None
) -> tuple[int, int | None, int | None]:
    """Time, power and counter in the grid's integer steps (ms, mW, mWh)."""
    return (
        round(ts * MILLI),
        None if power_w is None else round(power_w * MILLI),
        None if energy_wh is None else round(energy_wh * MILLI),
    )


# -- the state machine's snapshot in binary --------------------------------------
_SNAP_KEYS = SNAPSHOT_KEYS
_BOOL_KEYS = SNAPSHOT_FLAGS
_STATES = tuple(State)
_SNAP_STRUCT = struct.Struct(f"<B{len(_SNAP_KEYS)}d")


def _pack_snapshot(snap: dict) -> bytes:
    values = []
    for key in _SNAP_KEYS:
        value = snap[key]
        values.append(math.nan if value is None else float(value))
    return _SNAP_STRUCT.pack(_STATES.index(State(snap["state"])), *values)


def _unpack_snapshot(data: bytes, pos: int) -> tuple[dict, int]:
    state, *values = _SNAP_STRUCT.unpack_from(data, pos)
    snap: dict[str, Any] = {"version": SNAPSHOT_VERSION, "state": _STATES[state].value}
    for key, value in zip(_SNAP_KEYS, values, strict=True):
        if math.isnan(value):
            snap[key] = None
        elif key in _BOOL_KEYS:
            snap[key] = bool(value)
        else:
            snap[key] = value
    return snap, pos + _SNAP_STRUCT.size


# The one statement that stores sealed chunks (the runner's writer and the
# demo history), and its rows (``binary``: the driver's bytea adapter).
INSERT_CHUNKS = (
    "INSERT INTO mqtt_power_chunk "
    "(device_id, company_id, first_ts, last_ts, count, data) VALUES %s"
)
CHUNK_TEMPLATE = "(%s, %s, %s, %s, %s, %s::bytea)"


def chunk_rows(chunks: list["Chunk"], binary: Any) -> list[tuple]:
    return [
        (c.device_id, c.company_id, c.first_ts, c.last_ts, c.count, binary(c.data))
        for c in chunks
    ]


# -- writing ------------------------------------------------------------------------
class HistoryTail:
    """A machine's newest records, encoded; sealed into chunks as it grows.

    ``data`` is what the database holds (or will, once the batch being
    written commits): its first ``committed`` bytes are there already;
    ``reset`` says the database's tail must be replaced, not appended to
    (a chunk was sealed since).  ``chunks`` are sealed, not yet written.
    """

    __slots__ = (
        "device_id",
        "company_id",
        "data",
        "committed",
        "reset",
        "chunks",
        "count",
        "first_ts",
        "last_ts",
        "_ts",
        "_power",
        "_energy",
    )

    def __init__(
        self, device_id: int, company_id: int | None, stored: bytes | None = None
    ) -> None:
        self.device_id = device_id
        self.company_id = company_id
        self.data = bytearray()
        self.committed = 0
        self.reset = False
        self.chunks: list[Chunk] = []
        self.count = 0
        self.first_ts = self.last_ts = 0.0
        self._ts = self._power = self._energy = 0
        if stored:
            self._resume(bytes(stored))

    def _resume(self, stored: bytes) -> None:
        """Continue the tail the database holds (after a restart)."""
        for record in decode(stored):
            self._note(record.ts, *_ints(record.ts, record.power_w, record.energy_wh))
        self.data = bytearray(stored)
        self.committed = len(stored)

    def _note(self, at: float, ts: int, power: int | None, energy: int | None) -> None:
        if not self.count:
            self.first_ts = at
        self.count += 1
        if at > self.last_ts:
            self.last_ts = at
        self._ts = ts
        if power is not None:
            self._power = power
        if energy is not None:
            self._energy = energy

    @property
    def empty(self) -> bool:
        return not self.data

    def wants_snapshot(self, ts: float) -> bool:
        """Will the next record start a tail?  Then ``add`` needs the state
        machine's snapshot from before that input."""
        return not self.data or self._full(ts)

    def _full(self, ts: float) -> bool:
        return len(self.data) >= TAIL_BYTES or ts - self.first_ts >= TAIL_SPAN_S

    def add(
        self,
        kind: int,
        ts: float,
        power_w: float | None = None,
        energy_wh: float | None = None,
        snapshot: dict | None = None,
    ) -> None:
        """Append one input the state machine took (its values on the grid);
        ``snapshot``: the machine before it, when ``wants_snapshot`` said so."""
        if self.data and self._full(ts):
            self._seal()
        if not self.data:
            if snapshot is None:
                raise ValueError("a new history tail needs the machine's snapshot")
            self._write(SNAP, ts, None, None, snapshot)
        self._write(kind, ts, power_w, energy_wh, None)

    def _write(
        self,
        kind: int,
        at: float,
        power_w: float | None,
        energy_wh: float | None,
        snapshot: dict | None,
    ) -> None:
        # Plain arguments, not a Record: this runs for every reading.
        ts, power, energy = _ints(at, power_w, energy_wh)
        out = self.data
        head = kind
        if energy is not None:
            head |= _HAS_ENERGY
        if kind == READ and power == self._power:
            head |= _SAME_POWER
        out.append(head)
        _put(out, ts - self._ts)
        if kind == SNAP:
            assert snapshot is not None
            out += _pack_snapshot(snapshot)
        elif kind == READ and not head & _SAME_POWER:
            _put(out, (power or 0) - self._power)
        if energy is not None:
            _put(out, energy - self._energy)
        self._note(at, ts, power, energy)

    def seal(self) -> None:
        """Seal what the tail holds into a chunk now (a tool writing history
        for the past seals its last run: no tail is left behind)."""
        if self.data:
            self._seal()

    def _seal(self) -> None:
        self.chunks.append(
            Chunk(
                self.device_id,
                self.company_id,
                self.first_ts,
                self.last_ts,
                self.count,
                zlib.compress(bytes(self.data), 6),
            )
        )
        self.data = bytearray()
        self.committed = 0
        self.reset = True
        self.count = 0
        self._ts = self._power = self._energy = 0

    def pending(self) -> tuple[bytes, bool, list[Chunk]]:
        """What the next write must do: (bytes to append, or the whole tail
        when ``reset``; replace instead of append?; chunks to insert)."""
        if self.reset:
            return bytes(self.data), True, list(self.chunks)
        return bytes(self.data[self.committed :]), False, list(self.chunks)

    def written(self) -> None:
        """The batch that carried ``pending()`` committed."""
        self.committed = len(self.data)
        self.reset = False
        if self.chunks:  # emptied, not replaced: no new list every flush
            self.chunks.clear()


# -- reading --------------------------------------------------------------------
def decode(data: bytes) -> Iterator[Record]:
    """The records of a tail (raw) or of a chunk's decompressed data."""
    pos = 0
    end = len(data)
    ts = power = energy = 0
    while pos < end:
        head = data[pos]
        pos += 1
        kind = head & 0x07
        delta, pos = _get(data, pos)
        ts += delta
        snapshot = None
        value_power: float | None = None
        if kind == SNAP:
            snapshot, pos = _unpack_snapshot(data, pos)
        elif kind == READ:
            if not head & _SAME_POWER:
                delta, pos = _get(data, pos)
                power += delta
            value_power = power / MILLI
        value_energy: float | None = None
        if head & _HAS_ENERGY:
            delta, pos = _get(data, pos)
            energy += delta
            value_energy = energy / MILLI
        yield Record(kind, ts / MILLI, value_power, value_energy, snapshot)


def decode_chunk(data: bytes) -> Iterator[Record]:
    return decode(zlib.decompress(data))


def seed(records: Iterable[Record], config: DetectorConfig) -> SessionStateMachine:
    """A state machine from the SNAP record that starts a tail or chunk."""
    for record in records:
        if record.kind != SNAP or record.snapshot is None:
            raise ValueError("a history run must start with a SNAP record")
        return SessionStateMachine.restore(config, record.snapshot)
    raise ValueError("empty history run")


def apply(machine: SessionStateMachine, record: Record) -> list[Event]:
    """Feed one record to ``machine`` as the engine did; returns its events."""
    return step(machine, record.kind, record.ts, record.power_w, record.energy_wh)


def step(
    machine: SessionStateMachine,
    kind: int,
    ts: float,
    power_w: float | None = None,
    energy_wh: float | None = None,
) -> list[Event]:
    """One input of a kind to ``machine``: what each record kind means, for
    the live engine (``DeviceRuntime.take``) and a replay alike."""
    if kind == READ:
        assert power_w is not None
        return machine.feed(ts, power_w, energy_wh)
    if kind == TICK:
        return machine.tick(ts)
    if kind == OFFLINE:
        return machine.offline(ts)
    if kind == MANUAL_START:
        return machine.manual_start(ts)
    if kind == PERSON_STOP:
        # A person's stop closes the session as it stands, with no debounce
        # or timeout the runner had not yet applied: the database already
        # holds the person's close, and a replay must end it the same way.
        return machine.manual_stop(ts, apply_deadlines=False)
    if kind == MANUAL_STOP:
        return machine.manual_stop(ts)
    return []  # ONLINE: informational; SNAP: a checkpoint (a run's first)


def idle_below(snapshot: dict, config: DetectorConfig) -> bool:
    """A checkpoint from which a replay with ``config`` is exact: the machine
    was idle and its held power (if any) is below the standby threshold."""
    power = snapshot.get("power")
    return snapshot["state"] == State.IDLE.value and (
        power is None or power < config.standby_threshold_w
    )


class Replayed(NamedTuple):
    """A closed session of a replay; ``manual``: a person started it."""

    summary: SessionSummary
    manual: bool


class Replay:
    """A replay that can go on later: feed it runs as they are read.

    ``closed`` collects the closed sessions; ``state()`` and ``resume()``
    carry a replay across calls (the recompute wizard replays a long history
    in steps)."""

    def __init__(
        self,
        config: DetectorConfig,
        machine: SessionStateMachine | None = None,
        manual: bool = False,
    ) -> None:
        self.config = config
        self.machine = machine
        self.manual = manual  # the open session was started by a person
        self.closed: list[Replayed] = []

    def run(self, records: Iterable[Record]) -> None:
        """One run of records (a chunk or the tail), in order."""
        records = iter(records)
        if self.machine is None:
            try:
                self.machine = seed(records, self.config)
            except ValueError:
                return  # an empty run
        machine = self.machine
        for record in records:
            for event in apply(machine, record):
                if type(event) is SessionOpened:
                    self.manual = event.manual
                elif type(event) is SessionClosed:
                    self.closed.append(Replayed(event.summary, self.manual))
            if record.kind == MANUAL_START and machine.session is not None:
                # A person's start that finds a session open: its automatic
                # start came due just before, unseen, and the runner took the
                # person's session for it (``Fleet._sync_session``).
                self.manual = True

    def state(self) -> dict:
        """JSON-safe: where the replay stands (not the sessions it closed)."""
        snapshot = self.machine.snapshot() if self.machine is not None else None
        return {"machine": snapshot, "manual": self.manual}

    @classmethod
    def resume(cls, config: DetectorConfig, state: dict | None) -> "Replay":
        state = state or {}
        snapshot = state.get("machine")
        machine = SessionStateMachine.restore(config, snapshot) if snapshot else None
        return cls(config, machine, bool(state.get("manual")))


def replay_runs(
    runs: Iterable[Iterable[Record]],
    config: DetectorConfig,
    machine: SessionStateMachine | None = None,
) -> tuple[SessionStateMachine, list[Replayed]]:
    """Replay runs of records (chunks, then the tail) through one state machine.

    The first run's SNAP seeds the machine unless one is given; later SNAP
    records are checkpoints and change nothing.  Returns the machine (its
    open session, if any, is ``machine.session``) and the closed sessions.
    """
    replay = Replay(config, machine)
    for run in runs:
        replay.run(run)
    return replay.machine or SessionStateMachine(config), replay.closed
