"""Values of the session state machine: states, end reasons, config and events.

Standard library only.  The Odoo layer derives its selections and field
defaults from these definitions (``State``, the end reasons,
``DetectorConfig``'s defaults), so each fact is stated here once; the
semantics are documented with the state machine (machine.py).
"""

import enum
import math
from dataclasses import dataclass, fields
from typing import Final

__all__ = [
    "END_REASONS",
    "MANUAL",
    "Event",
    "OFFLINE",
    "POWER_DROP",
    "TIMEOUT",
    "DETECTOR_PARAMS",
    "DetectorConfig",
    "DetectorConfigError",
    "SessionClosed",
    "SessionOpened",
    "SessionSummary",
    "State",
    "StateChanged",
]

POWER_DROP = "power_drop"
TIMEOUT = "timeout"
OFFLINE = "offline"
MANUAL = "manual"
END_REASONS = (POWER_DROP, TIMEOUT, OFFLINE, MANUAL)


class State(str, enum.Enum):
    """Machine state; a ``str`` so it can be written to a selection field as is.

    What ``enum.StrEnum`` is, spelled out: Odoo 18 runs on Python 3.10 too."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    IDLE = "idle"
    STARTING = "starting"
    STANDBY = "standby"
    WORKING = "working"
    STOPPING = "stopping"


def _finite(value: object) -> bool:
    """True for a finite int/float that is not a bool (bools are config typos)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Per-device detector parameters, validated once so the hot path need not.

    Its fields are the detector's parameters, by the names the mqtt.device
    fields, the recompute wizard and the runner's configuration use
    (``DETECTOR_PARAMS``).  A bad value raises ``DetectorConfigError``."""

    standby_threshold_w: float = 20.0
    working_threshold_w: float = 100.0
    start_debounce_s: float = 3.0
    stop_debounce_s: float = 15.0
    message_timeout_s: float = 20.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not _finite(value):
                raise DetectorConfigError("finite", (f.name,), (value,))
            object.__setattr__(self, f.name, float(value))
        if self.standby_threshold_w <= 0:
            raise DetectorConfigError(
                "positive", ("standby_threshold_w",), (self.standby_threshold_w,)
            )
        if self.standby_threshold_w > self.working_threshold_w:
            raise DetectorConfigError(
                "not_above",
                ("standby_threshold_w", "working_threshold_w"),
                (self.standby_threshold_w, self.working_threshold_w),
            )
        for name in ("start_debounce_s", "stop_debounce_s"):
            if getattr(self, name) < 0:
                raise DetectorConfigError(
                    "not_negative", (name,), (getattr(self, name),)
                )
        if self.message_timeout_s <= 0:
            raise DetectorConfigError(
                "positive", ("message_timeout_s",), (self.message_timeout_s,)
            )


class DetectorConfigError(ValueError):
    """A detector parameter that cannot be used: ``rule`` it breaks
    ("finite", "positive", "not_negative", "not_above": the first must not
    be above the second), the parameters' ``names`` and their ``values``, so
    a caller can say it in its own words and language."""

    def __init__(self, rule: str, names: tuple[str, ...], values: tuple) -> None:
        self.rule, self.names, self.values = rule, names, values
        if rule == "not_above":
            (a, b), (x, y) = names, values
            super().__init__(f"{a} ({x!r}) must be <= {b} ({y!r})")
            return
        said = {
            "finite": "must be a finite number",
            "positive": "must be > 0",
            "not_negative": "must be >= 0",
        }[rule]
        super().__init__(f"{names[0]} {said}, got {values[0]!r}")


# The detector's parameters, by name (one place: DetectorConfig's fields).
DETECTOR_PARAMS: Final = tuple(f.name for f in fields(DetectorConfig))


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One session; ``end_time``/``end_reason`` are None while it is open."""

    start_time: float
    end_time: float | None
    standby_duration_s: float
    working_duration_s: float
    energy_wh: float
    end_reason: str | None

    @property
    def total_duration_s(self) -> float:
        return self.standby_duration_s + self.working_duration_s


@dataclass(frozen=True, slots=True)
class SessionOpened:
    start_time: float
    state: State
    manual: bool


@dataclass(frozen=True, slots=True)
class StateChanged:
    ts: float
    old: State
    new: State
    power_w: float | None


@dataclass(frozen=True, slots=True)
class SessionClosed:
    summary: SessionSummary


# What an input of the state machine returns: the events it caused, in order.
Event = StateChanged | SessionOpened | SessionClosed
