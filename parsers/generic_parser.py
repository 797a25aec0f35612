"""Any other meter: a JSON object with a dotted path to the power, or a number.

For Tasmota (``ENERGY.Power``), ESPHome, Zigbee2MQTT and home-made sensors,
configured per device by paths instead of code. Stateless: every payload
stands alone, so ``energy_wh`` is set only when the energy path is present
(and not null) in that payload, never held from an earlier one.
"""

from typing import Any, Final

from .exceptions import (
    InvalidValue,
    NotAReading,
    ParseError,
    UnexpectedShape,
    unexpected,
)
from .reading import TS_DEVICE, TS_NOT_BELIEVED, TS_RECEIVED, Reading
from .topic_filter import has_wildcard, topic_matches, validate_filter
from .values import (
    DEFAULT_LIMITS,
    Limits,
    device_time,
    energy,
    load_json,
    plausible_time,
    power,
)

_MISSING: Final = object()


def compile_path(path: str) -> tuple[str, ...]:
    """``"sensors.0.w"`` -> ``("sensors", "0", "w")``; ValueError if empty."""
    if type(path) is not str or not path.strip():
        raise ValueError(f"a JSON path like 'ENERGY.Power' is required, not {path!r}")
    parts = tuple(path.split("."))
    if any(not part for part in parts):
        raise ValueError(f"JSON path {path!r} has an empty segment")
    return parts


def resolve(value: Any, parts: tuple[str, ...]) -> object:
    """Follow a compiled path; digits index lists. _MISSING when absent."""
    for part in parts:
        kind = type(value)
        if kind is dict:
            value = value.get(part, _MISSING)
            if value is _MISSING:
                return _MISSING
        elif kind is list and part.isdigit() and part.isascii():
            index = int(part)
            if index >= len(value):
                return _MISSING
            value = value[index]
        else:
            return _MISSING
    return value


def subscriptions(topic_filter: str) -> list[str]:
    """The one filter a generic meter is read on."""
    validate_filter(topic_filter)
    return [topic_filter]


class GenericJsonParser:
    """Parser for one device on a topic (filter) with configurable paths."""

    # No clock learning: ts comes from ts_path or arrival.
    clock_offset: float | None = None

    def __init__(
        self,
        topic_filter: str,
        power_path: str = "power",
        energy_path: str | None = None,
        ts_path: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
        *,
        energy_scale: float = 1.0,
    ) -> None:
        """``energy_scale`` turns the counter into Wh (Tasmota's Total is kWh: 1000)."""
        validate_filter(topic_filter)
        if type(energy_scale) not in (int, float) or not 0 < energy_scale < 1e9:
            raise ValueError(
                f"energy_scale must be a positive number: {energy_scale!r}"
            )
        self._energy_scale = float(energy_scale)
        self.topic_filter = topic_filter
        self._wildcard = has_wildcard(topic_filter)
        self._power_path = compile_path(power_path)
        self._energy_path = compile_path(energy_path) if energy_path else None
        self._ts_path = compile_path(ts_path) if ts_path else None
        self.limits = limits

    def subscriptions(self) -> list[str]:
        return [self.topic_filter]

    def parse(self, topic: str, payload: bytes | str, received_at: float) -> Reading:
        """One frame -> Reading, or raise a ParseError subclass (nothing else)."""
        try:
            return self._parse(topic, payload, received_at)
        except ParseError:
            raise
        except Exception as exc:  # contract: only ParseError escapes
            raise unexpected(exc) from exc

    def _parse(self, topic: str, payload: bytes | str, received_at: float) -> Reading:
        if topic != self.topic_filter and not (
            self._wildcard and topic_matches(self.topic_filter, topic)
        ):
            raise NotAReading(f"topic {topic!r} does not match", "foreign_topic")
        doc = load_json(payload, self.limits)
        kind = type(doc)
        ts, ts_source = received_at, TS_RECEIVED
        wh: float | None = None
        if kind is dict:
            raw = resolve(doc, self._power_path)
            if raw is _MISSING or raw is None:
                raise NotAReading("no power at the configured path", "no_power")
            watts = power(raw, self.limits)
            if self._energy_path:
                raw = resolve(doc, self._energy_path)
                if raw is not _MISSING and raw is not None:
                    wh = energy(raw) * self._energy_scale
            if self._ts_path:
                raw = resolve(doc, self._ts_path)
                if raw is not _MISSING and raw is not None:
                    synced = device_time(raw)
                    device_ts = plausible_time(synced, received_at, self.limits)
                    if device_ts is not None:
                        ts, ts_source = device_ts, TS_DEVICE
                    elif synced is not None:
                        ts_source = TS_NOT_BELIEVED
        elif kind is int or kind is float:
            watts = power(doc, self.limits)
        elif kind is str or kind is bool:
            raise InvalidValue(
                f"payload {str(doc)[:40]!r} is not a number", "not_a_number"
            )
        else:
            raise UnexpectedShape("expected a JSON object or a number")
        return Reading(
            ts=ts,
            received_at=received_at,
            power_w=watts,
            energy_wh=wh,
            device_key=topic,
            ts_source=ts_source,
            source="status",
        )

    def snapshot(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Stateless: nothing to take back."""
