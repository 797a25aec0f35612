"""One machine metered by the sum of several channels of one device.

A three-phase machine on a Gen1 Shelly 3EM (``emeter:0+emeter:1+emeter:2``),
a machine fed by both channels of a Pro EM (``em1:0+em1:1``) or by both
relays of a 2PM (``switch:0+switch:1``): each channel keeps its own parser,
so its time and staleness rules apply to it alone (a stale or repeated frame
of one phase changes nothing), and the machine's power is the sum of every
channel's held power (a reading holds until the next).  Until every channel
has reported a power the sum is unknown; the counter is the sum of the
channels' counters, sent when a frame brought a fresh one and every channel
has one.
"""

from typing import Any, Protocol

from .exceptions import NotAReading
from .reading import Reading


class Channel(Protocol):
    """What summing needs of a channel's parser (Gen2 and Gen1 have it)."""

    prefix: str
    component: str
    clock_offset: float | None

    def subscriptions(self) -> list[str]: ...
    def parse(
        self, topic: str, payload: bytes | str, received_at: float
    ) -> Reading: ...
    def held_power(self) -> float | None: ...
    def held_energy(self) -> float | None: ...
    def held_errors(self) -> list[str]: ...
    def snapshot(self) -> dict[str, Any]: ...
    def restore(self, state: dict[str, Any]) -> None: ...


MAX_CHANNELS = 8
# Refusals that only say "not this channel's": a channel that had a reason
# of its own (stale, an RPC error, ...) speaks for the frame.
_NOT_MINE = frozenset(
    ("no_component", "other_component", "other_topic", "foreign_topic", "rpc_result")
)


class SummedParser:
    """The sum of several channel parsers of one device (same prefix)."""

    def __init__(self, channels: list[Channel]) -> None:
        if not 2 <= len(channels) <= MAX_CHANNELS:
            raise ValueError(
                f"summed channels: 2 to {MAX_CHANNELS}, not {len(channels)}"
            )
        components = [c.component for c in channels]
        if len(set(components)) != len(components):
            raise ValueError(f"a channel is named twice: {'+'.join(components)}")
        self.channels = channels
        self.prefix = channels[0].prefix
        self.component = "+".join(components)

    @property
    def clock_offset(self) -> float | None:
        """The device's clock offset (its channels share one clock)."""
        return self.channels[0].clock_offset

    @clock_offset.setter
    def clock_offset(self, value: float | None) -> None:
        for channel in self.channels:
            channel.clock_offset = value

    def subscriptions(self) -> list[str]:
        return self.channels[0].subscriptions()

    def parse(self, topic: str, payload: bytes | str, received_at: float) -> Reading:
        readings = []
        refusal: NotAReading | None = None
        for channel in self.channels:
            try:
                readings.append(channel.parse(topic, payload, received_at))
            except NotAReading as exc:
                if refusal is None or (
                    refusal.code in _NOT_MINE and exc.code not in _NOT_MINE
                ):
                    refusal = exc
        if not readings:
            assert refusal is not None
            raise refusal
        first = readings[0]
        if first.online is not None:
            return first
        if any(r.meter_errors for r in readings):
            errors = tuple(
                f"{c.component}: {e}" for c in self.channels for e in c.held_errors()
            )
            return Reading(
                ts=first.ts,
                received_at=received_at,
                meter_errors=errors,
                device_key=first.device_key,
                ts_source=first.ts_source,
                source=first.source,
            )
        powers = [c.held_power() for c in self.channels]
        counters = [c.held_energy() for c in self.channels]
        fresh = any(r.energy_wh is not None for r in readings)
        energy = None
        if fresh and None not in counters:
            energy = sum(c for c in counters if c is not None)
        watts: float | None = None
        if None not in powers:
            watts = sum(p for p in powers if p is not None)
        elif energy is None:
            missing = [c.component for c in self.channels if c.held_power() is None]
            raise NotAReading(
                f"no power known yet for {', '.join(missing)}", "no_power"
            )
        return Reading(
            ts=first.ts,
            received_at=received_at,
            power_w=watts,
            energy_wh=energy,
            device_key=first.device_key,
            ts_source=first.ts_source,
            source=first.source,
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "channels": [c.snapshot() for c in self.channels],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back a :meth:`snapshot`; what does not fit is dropped."""
        if type(state) is not dict or state.get("component") != self.component:
            return
        snapshots = state.get("channels")
        if type(snapshots) is not list or len(snapshots) != len(self.channels):
            return
        for channel, snap in zip(self.channels, snapshots, strict=True):
            channel.restore(snap)
