"""One machine as the engine keeps it: its configuration as primitives, its
parser, its session state machine, its message cap and its latest live values.

Pure: the runner builds a ``DeviceConfig`` from an ``mqtt.device`` row, so
nothing here holds a record, an environment or a cursor across threads.
"""

import logging
import struct
from dataclasses import dataclass, field

from ...parsers import Parser
from .batch import LiveRow
from .history import (
    MANUAL_START,
    OFFLINE,
    ONLINE,
    PERSON_STOP,
    READ,
    TICK,
    HistoryTail,
    step,
)
from .machine import SessionStateMachine
from .rate_limit import TokenBucket
from .types import DetectorConfig, Event

_logger = logging.getLogger(__name__)

# The inputs the runner gives a machine (a replay takes older kinds too).
TAKEN = frozenset((READ, TICK, ONLINE, OFFLINE, MANUAL_START, PERSON_STOP))


# The time as read of a machine's last reading applied, then the power and
# counter of every frame applied at that very time, in one flat tuple of
# numbers: the garbage collector stops tracking it at its first collection.
# (A set it tracks for good, and nested tuples lose their tracking one level
# per collection; a machine keeps this a second, long enough for either to
# reach the oldest generation, whose full collections walk Odoo's whole heap.)
LastRead = tuple[float | None, ...]


@dataclass(frozen=True)
class DeviceConfig:
    """The runner-relevant fields of one mqtt.device, plus its stored state."""

    id: int
    name: str
    connection_id: int
    company_id: int | None
    parser_type: str
    topic_prefix: str | None
    topic_pattern: str | None
    component: str | None
    detector: DetectorConfig
    # The kind's options, by the mqtt.device field holding each
    # (``MeterKind.option_fields``): {"json_power_path": "ENERGY.Power"}.
    options: dict[str, str | None] = field(default_factory=dict)
    poll_interval_s: float = 5.0
    log_raw: bool = False
    max_msg_rate: int = 50
    detector_snapshot: dict | None = field(default=None, compare=False)
    parser_snapshot: dict | None = field(default=None, compare=False)
    running_session_id: int | None = field(default=None, compare=False)
    running_start_ts: float | None = field(default=None, compare=False)
    history_tail: bytes | None = field(default=None, compare=False, repr=False)

    def parser_key(self) -> tuple:
        return (
            self.parser_type,
            self.topic_prefix,
            self.topic_pattern,
            self.component,
            tuple(sorted(self.options.items())),
        )

    def same_meter(self, other: "DeviceConfig") -> bool:
        """Whether ``other`` reads the same meter on the same broker: else the
        machine's parser and routes are built anew (and its stored state is
        read again)."""
        return (
            self.parser_key() == other.parser_key()
            and self.connection_id == other.connection_id
        )


class DeviceRuntime:
    """Mutable per-machine state, touched only by the engine's thread.

    ``session_id`` is the database id of the session the state machine has
    open, once the writer has created it (None before, and when idle).
    """

    def __init__(
        self, cfg: DeviceConfig, parser: Parser, now: float, history: bool = True
    ) -> None:
        self.cfg = cfg
        self.parser = parser
        self.state_machine = _state_machine(cfg)
        self.history = _history(cfg) if history else None
        # The stored machine's open session is the running one in the
        # database when they start together (the writer keeps the start in
        # line); else a person replaced it while no runner ran.
        session = self.state_machine.session
        same = session is not None and session.start_time == cfg.running_start_ts
        self.session_id = cfg.running_session_id if same else None
        self.filters: list[str] = []
        # The src of our requests to it (None: not polled); it answers on
        # "<reply_src>/rpc" (parsers.shelly_rpc.reply_src).
        self.reply_src: str | None = None
        self.bucket = TokenBucket(cfg.max_msg_rate, now)
        # A restored machine counts as just heard: silence is measured from here.
        self.last_recv_mono = now
        # When the state machine last took a reading: its device clock runs
        # on from that reading (a stale or copied frame does not move it).
        self.read_mono = now
        self.last_poll_mono = now
        self.progress_mono = now
        self.progress_due = False
        self.rate_limited = False
        self.reject_logged: dict[tuple, float] = {}
        self.reject_counts: dict[tuple, int] = {}
        snap = cfg.parser_snapshot or {}
        self.shelly_id = snap.get("device_id") if isinstance(snap, dict) else None
        self.online: bool | None = None
        self.meter_error: str | None = None
        self.fault: str | None = None
        self.energy_wh: float | None = None
        self.last_msg_wall: float | None = None
        self.last_read: LastRead | None = None

    @property
    def id(self) -> int:
        return self.cfg.id

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def connection_id(self) -> int:
        return self.cfg.connection_id

    def take(
        self,
        kind: int,
        ts: float,
        power_w: float | None = None,
        energy_wh: float | None = None,
    ) -> list[Event]:
        """Give the state machine one input; keep it in the history when taken.

        Values are on the history's grid (``history.grid``).  A reading the
        machine refused (stale) is not kept; a tick only when it changed
        something; an offline notice or a manual input at the time it took
        effect (a late one counts from the processed time).
        """
        machine = self.state_machine
        history = self.history
        snapshot = None
        if history is not None and history.wants_snapshot(ts):
            snapshot = machine.snapshot()
        if kind not in TAKEN:
            raise ValueError(f"not an input the runner takes: {kind}")
        before = machine.last_ts
        events = step(machine, kind, ts, power_w, energy_wh)
        if kind == READ:
            taken = machine.last_ts != before
        elif kind == TICK:
            taken = bool(events)
        else:  # an online or offline notice, a person's start or stop
            taken = True
            if kind != ONLINE and machine.now is not None:
                ts = machine.now
        if taken and history is not None:
            history.add(kind, ts, power_w, energy_wh, snapshot)
        return events

    def reconfigure(self, cfg: DeviceConfig) -> None:
        if cfg.detector != self.cfg.detector:
            self.state_machine.reconfigure(cfg.detector)
        if cfg.max_msg_rate != self.cfg.max_msg_rate:
            self.bucket.set_rate(cfg.max_msg_rate)
        self.cfg = cfg

    def live_row(self) -> LiveRow:
        """The live fields the writer writes for this machine.

        The power shown is the state machine's held power: the one the
        sessions are computed from (unknown, after a timeout or the meter's
        Last Will, shows as 0 W)."""
        machine = self.state_machine
        append, reset = None, False
        if self.history is not None:
            append, reset, _chunks = self.history.pending()
        return LiveRow(
            self.cfg.id,
            machine.state.value,
            machine.power_w or 0.0,
            self.energy_wh,
            self.last_msg_wall,
            self.online,
            self.meter_error,
            self.rate_limited,
            self.fault,
            machine.snapshot(),
            self.parser.snapshot(),
            self.shelly_id,
            self.session_id,
            append,
            reset,
        )


def _history(cfg: DeviceConfig) -> HistoryTail:
    """The machine's history tail, continuing the one the database holds."""
    try:
        return HistoryTail(cfg.id, cfg.company_id, cfg.history_tail)
    except (ValueError, IndexError, struct.error) as exc:
        _logger.warning(
            "Machine %s: stored history tail unreadable (%s); starting a new one",
            cfg.name,
            exc,
        )
        tail = HistoryTail(cfg.id, cfg.company_id)
        tail.reset = True  # replace the unreadable one
        return tail


def _state_machine(cfg: DeviceConfig) -> SessionStateMachine:
    """The machine's state machine, resumed from its stored state when possible."""
    if cfg.detector_snapshot:
        try:
            return SessionStateMachine.restore(cfg.detector, cfg.detector_snapshot)
        except (ValueError, TypeError, KeyError) as exc:
            _logger.warning(
                "Machine %s: stored detector state unusable (%s); starting fresh",
                cfg.name,
                exc,
            )
    return SessionStateMachine(cfg.detector)
