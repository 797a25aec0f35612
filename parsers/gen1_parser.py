"""Shelly Gen1 topics: one plain numeric string per value and topic.

Gen1 devices publish ``<prefix>/relay/N/power`` (a 1PM, a Plug S, a 2.5 in
relay mode), ``roller/N/power`` (a 2.5 in roller mode) or ``emeter/N/power``
(an EM, a 3EM: one per phase), and the energy counter on separate topics, with
no device time, so the parser holds the last value of each and stamps
readings with the receive time.

The counter: ``relay/N/energy`` and ``roller/N/energy`` count watt-minutes
(reset on reboot); an emeter's ``emeter/N/total`` counts Wh and survives a
reboot (its ``energy`` and ``returned_energy`` count watt-minutes since boot
and are not read, nor ``total_returned``: energy fed back is no machine's use).

A power frame gives the power and no energy; an energy frame gives the fresh
counter with the held power (the session detector takes every energy value as
a new counter sample, so a held counter is never repeated), or without power
before any power was known: a reading with the counter alone.
"""

from typing import Any

from .exceptions import (
    InvalidValue,
    MalformedJson,
    NotAReading,
    ParseError,
    unexpected,
)
from .reading import TS_RECEIVED, Reading
from .shelly_rpc import split_component
from .topic_filter import validate_topic
from .values import (
    DEFAULT_LIMITS,
    Limits,
    energy,
    load_json,
    number,
    online_flag,
    power,
)


def subscriptions(prefix: str) -> list[str]:
    """Gen1 spreads a device over many sub-topics: take them all."""
    validate_topic(prefix)
    return [f"{prefix}/#"]


# component kind -> (sub-topic of its counter, its units in one Wh)
COUNTERS = {
    "relay": ("energy", 60.0),  # watt-minutes
    "roller": ("energy", 60.0),  # watt-minutes
    "emeter": ("total", 1.0),  # Wh
}


class ShellyGen1Parser:
    """Parser for one Gen1 channel (``relay:N``, ``roller:N`` or ``emeter:N``)."""

    # Gen1 never sends device time; kept for the same interface as Gen2.
    clock_offset: float | None = None

    def __init__(
        self, prefix: str, component: str = "relay:0", limits: Limits = DEFAULT_LIMITS
    ) -> None:
        validate_topic(prefix)
        kind, index = split_component(component)
        if kind not in COUNTERS:
            raise ValueError(
                f"Gen1 component must be relay:N, roller:N or emeter:N, "
                f"not {component!r}"
            )
        self.prefix = prefix
        self.component = component
        self.limits = limits
        base = f"{prefix}/{kind}/{index}/"
        self._power_topic = base + "power"
        counter, self._units_per_wh = COUNTERS[kind]
        self._energy_topic = base + counter
        self._online_topic = prefix + "/online"
        self._power: float | None = None
        self._energy: float | None = None

    def subscriptions(self) -> list[str]:
        return subscriptions(self.prefix)

    def parse(self, topic: str, payload: bytes | str, received_at: float) -> Reading:
        """One frame -> Reading, or raise a ParseError subclass (nothing else)."""
        try:
            wh: float | None = None  # only an energy frame carries the counter
            if topic == self._power_topic:
                self._power = power(self._number(payload), self.limits)
            elif topic == self._energy_topic:
                value = energy(self._number(payload), "energy")
                self._energy = wh = value / self._units_per_wh
            elif topic == self._online_topic:
                return Reading(
                    ts=received_at,
                    received_at=received_at,
                    online=online_flag(payload),
                    device_key=self.prefix,
                    ts_source=TS_RECEIVED,
                    source="online",
                )
            elif topic.startswith(self.prefix + "/"):
                raise NotAReading(f"topic {topic!r} has no reading", "other_topic")
            else:
                raise NotAReading(
                    f"topic {topic!r} is not under the prefix", "foreign_topic"
                )
            return Reading(
                ts=received_at,
                received_at=received_at,
                power_w=self._power,
                energy_wh=wh,
                device_key=self.prefix,
                ts_source=TS_RECEIVED,
                source="status",
            )
        except ParseError:
            raise
        except Exception as exc:  # contract: only ParseError escapes
            raise unexpected(exc) from exc

    def _number(self, payload: bytes | str) -> float:
        try:
            value = load_json(payload, self.limits)
        except MalformedJson:
            raise InvalidValue("payload is not a number", "not_a_number") from None
        return number(value, "payload")

    def held_power(self) -> float | None:
        return self._power

    def held_energy(self) -> float | None:
        return self._energy

    def held_errors(self) -> list[str]:
        return []  # Gen1 reports no meter errors

    def snapshot(self) -> dict[str, Any]:
        return {"power_w": self._power, "energy_wh": self._energy}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back a :meth:`snapshot`; invalid values are dropped, not raised."""
        state = state if type(state) is dict else {}
        try:
            self._power = power(state["power_w"], self.limits)
        except (KeyError, ParseError):
            self._power = None
        try:
            self._energy = energy(state["energy_wh"])
        except (KeyError, ParseError):
            self._energy = None
