"""What the bridge keeps per device: its configuration as primitives, its
parser, its session state machine, its rate cap and its latest live values.

No Odoo: the runner builds a ``DeviceConfig`` from an ``mqtt.device`` row, so
nothing here holds a record, an environment or a cursor across threads.
"""

import logging
from dataclasses import dataclass, field

from .session_detector import DetectorConfig, SessionDetector

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

    def parser_key(self):
        return (
            self.parser_type,
            self.topic_prefix,
            self.topic_pattern,
            self.component,
            self.json_power_path,
            self.json_energy_path,
        )


# A backlog let through after an outage: at most this much time's worth...
MAX_CATCH_UP_S = 3600.0
# ... and for at least this long after the reconnect (or the outage's length).
CATCH_UP_WINDOW_S = 60.0


class TokenBucket:
    """Per-device message cap: ``rate`` per second with a burst of 2 s.

    After an outage (broker down, Odoo restarted, another node taking over)
    the broker, or the meter itself, delivers what was sent meanwhile all at
    once: ``catch_up`` lets that backlog through, up to ``rate`` per second
    of the outage, so a meter that kept under its cap loses nothing.  Credit
    above the burst is only spent, never refilled, and lapses once such a
    backlog has had time to arrive.
    """

    __slots__ = ("rate", "burst", "tokens", "stamp", "credit_until")

    def __init__(self, rate, now):
        self.rate = float(max(1, rate))
        self.burst = 2.0 * self.rate
        self.tokens = self.burst
        self.stamp = now
        self.credit_until = now

    def _refill(self, now):
        if self.tokens < self.burst:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        elif now >= self.credit_until:
            self.tokens = self.burst  # unspent catch-up credit lapses
        self.stamp = now

    def allow(self, now):
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def calm(self, now):
        """Back under the cap for a while (half the burst saved up)."""
        self._refill(now)
        return self.tokens >= self.burst / 2

    def catch_up(self, outage_s, now):
        """The runner could not listen for ``outage_s`` seconds: credit it."""
        outage_s = min(outage_s, MAX_CATCH_UP_S)
        if not outage_s > 0.0:
            return
        self._refill(now)
        self.tokens += self.rate * outage_s
        self.credit_until = max(
            self.credit_until, now + max(CATCH_UP_WINDOW_S, outage_s)
        )


class DeviceRuntime:
    """Mutable per-device state, touched only by the bridge worker thread."""

    def __init__(self, cfg, parser, now):
        self.cfg = cfg
        self.parser = parser
        self.detector = _detector(cfg)
        self.filters = []
        self.bucket = TokenBucket(cfg.max_msg_rate, now)
        # A restored device counts as just heard: silence is measured from here.
        self.last_recv_mono = now
        self.last_poll_mono = now
        self.progress_mono = now
        self.progress_due = False
        self.state_changed = False
        self.dirty = False
        self.rate_limited = False
        self.reject_logged = {}
        self.reject_counts = {}
        snap = cfg.parser_snapshot or {}
        self.shelly_id = snap.get("device_id") if isinstance(snap, dict) else None
        self.online = None
        self.meter_error = False
        self.power_w = self.machine.power_w
        self.energy_wh = None
        self.voltage_v = None
        self.current_a = None
        self.last_msg_wall = None

    @property
    def id(self):
        return self.cfg.id

    @property
    def machine(self):
        return self.detector.machine

    @property
    def session_id(self):
        return self.detector.session_id

    @session_id.setter
    def session_id(self, value):
        self.detector.session_id = value

    @property
    def name(self):
        return self.cfg.name

    @property
    def connection_id(self):
        return self.cfg.connection_id

    def reconfigure(self, cfg):
        if cfg.detector != self.cfg.detector:
            self.machine.reconfigure(cfg.detector)
        if cfg.max_msg_rate != self.cfg.max_msg_rate:
            self.bucket.rate = float(max(1, cfg.max_msg_rate))
            self.bucket.burst = 2.0 * self.bucket.rate
        self.cfg = cfg

    def live_values(self):
        """The live fields the flush writes for this device."""
        parser_snapshot = (
            self.parser.snapshot() if hasattr(self.parser, "snapshot") else None
        )
        return {
            "current_state": self.machine.state.value,
            "current_power_w": self.power_w if self.power_w is not None else 0.0,
            "current_energy_wh": self.energy_wh,
            "last_message_time": self.last_msg_wall,
            "online": self.online,
            "meter_error": self.meter_error or None,
            "rate_limited": self.rate_limited,
            "detector_snapshot": self.machine.snapshot(),
            "parser_snapshot": parser_snapshot,
            "shelly_id": self.shelly_id,
        }


def _detector(cfg):
    """The device's detector, resumed from its stored state when possible."""
    try:
        return SessionDetector(
            cfg.id,
            cfg.name,
            cfg.detector,
            cfg.detector_snapshot,
            cfg.running_session_id,
        )
    except (ValueError, TypeError, KeyError) as exc:
        _logger.warning(
            "Device %s: stored detector state unusable (%s); starting fresh",
            cfg.name,
            exc,
        )
        return SessionDetector(cfg.id, cfg.name, cfg.detector)
