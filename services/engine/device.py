"""One machine as the engine keeps it: its configuration as primitives, its
parser, its session state machine, its message cap and its latest live values.

Pure: the runner builds a ``DeviceConfig`` from an ``mqtt.device`` row, so
nothing here holds a record, an environment or a cursor across threads.
"""

import logging
from dataclasses import dataclass, field

from ...parsers import Parser
from .batch import LiveRow
from .machine import SessionStateMachine
from .rate_limit import TokenBucket
from .types import DetectorConfig

_logger = logging.getLogger(__name__)


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
    json_power_path: str | None
    json_energy_path: str | None
    detector: DetectorConfig
    poll_interval_s: float = 5.0
    log_raw: bool = False
    max_msg_rate: int = 50
    detector_snapshot: dict | None = field(default=None, compare=False)
    parser_snapshot: dict | None = field(default=None, compare=False)
    running_session_id: int | None = field(default=None, compare=False)
    running_start_ts: float | None = field(default=None, compare=False)

    def parser_key(self) -> tuple:
        return (
            self.parser_type,
            self.topic_prefix,
            self.topic_pattern,
            self.component,
            self.json_power_path,
            self.json_energy_path,
        )


class DeviceRuntime:
    """Mutable per-machine state, touched only by the engine's thread.

    ``session_id`` is the database id of the session the state machine has
    open, once the writer has created it (None before, and when idle).
    """

    def __init__(self, cfg: DeviceConfig, parser: Parser, now: float) -> None:
        self.cfg = cfg
        self.parser = parser
        self.state_machine = _state_machine(cfg)
        has_session = self.state_machine.session is not None
        self.session_id = cfg.running_session_id if has_session else None
        self.filters: list[str] = []
        self.bucket = TokenBucket(cfg.max_msg_rate, now)
        # A restored machine counts as just heard: silence is measured from here.
        self.last_recv_mono = now
        self.last_poll_mono = now
        self.progress_mono = now
        self.progress_due = False
        self.state_changed = False
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

    @property
    def id(self) -> int:
        return self.cfg.id

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def connection_id(self) -> int:
        return self.cfg.connection_id

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
        )


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
