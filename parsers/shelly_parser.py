"""Shelly Gen2/Gen3/Gen4 (RPC) frames: NotifyStatus deltas, status topics, replies.

One parser per device and metering component.  The component says what is
read (``PROFILES``): ``pm1:N`` (PM Mini), ``switch:N`` and ``light:N``
(``apower``, the counter in ``aenergy.total``), ``em:N`` (Pro 3EM and 3EM-63
in their three-phase profile: ``total_act_power``, the counter in
``emdata:N``'s ``total_act``), ``em1:N`` (Pro EM, EM Gen3/Gen4, a 3EM in its
monophase profile: ``act_power``, the counter in ``em1data:N``'s
``total_act_energy``).  Counters are Wh.

NotifyStatus only carries the fields that changed, so the parser keeps the
last known component status and merges each delta onto it (a missing power is
"unchanged", never 0).  It also learns the offset between the device clock
and ours, so frames without device time (status topics, poll replies, online)
land on the device clock too.

Power, voltage and current are held and repeated on every reading; the energy
counter is held too, but ``Reading.energy_wh`` is set only when the frame
itself carried a fresh counter (the session detector takes every energy value
as a new counter sample).  A frame with a fresh counter before any power is a
reading without power.  A NotifyStatus/NotifyFullStatus whose synced ``ts`` is
older than the newest one merged is stale (a redelivery or an out-of-order
frame): ``NotAReading("stale")``, and nothing is merged.
"""

from collections import deque
from typing import Any, Final

from .exceptions import (
    NotAReading,
    ParseError,
    UnexpectedShape,
    unexpected,
)
from .reading import TS_DEVICE, TS_NOT_BELIEVED, TS_OFFSET, TS_RECEIVED, Reading
from .shelly_rpc import profile_of, split_component, subscriptions
from .shelly_status import ERROR_KEYS, errors_of, merge_counter, merged
from .topic_filter import validate_topic
from .values import (
    DEFAULT_LIMITS,
    SYNCED_TS_MAX,
    SYNCED_TS_MIN,
    Limits,
    device_time,
    load_object,
    offset_or_none,
    online_flag,
    plausible_time,
)

# Frames of one device instant remembered (power, counter, a few more).
_SAME_INSTANT: Final = 8

# Keys that make an RPC ``result`` a component status (PM1/Switch/EM.GetStatus),
# not the answer to some other call such as Switch.Set ({"was_on": true}).
_STATUS_KEYS: Final = (
    "apower",
    "aenergy",
    "total_act_power",
    "act_power",
    "voltage",
    "current",
    "output",
    "errors",
)


class ShellyGen2Parser:
    """Parser for one Gen2/Gen3 device and one of its metering components."""

    def __init__(
        self, prefix: str, component: str = "pm1:0", limits: Limits = DEFAULT_LIMITS
    ) -> None:
        validate_topic(prefix)
        _kind, index = split_component(component)
        profile = profile_of(component)
        self.prefix = prefix
        self.component = component
        self.limits = limits
        self._index = index
        self._power_key = profile.power_key
        # The component holding the counter, when it is another (emdata:N).
        self._data = f"{profile.data}:{index}" if profile.data else None
        self._energy_key = profile.energy_key
        self._prefix_slash = prefix + "/"
        self._skip = len(prefix) + 1
        # The merged component status: apower, voltage, current (float),
        # aenergy ({"total": float}) and errors (list[str]), each when known.
        self._status: dict[str, Any] = {}
        # newest synced params.ts merged into _status
        self._newest_ts: float | None = None
        # The last frames merged at that time, to know one sent again (a
        # meter whose clock stands still must not make this grow).
        self._at_newest: deque[bytes | str] = deque(maxlen=_SAME_INSTANT)
        self._clock_offset: float | None = None
        self._device_id: str | None = None

    @property
    def clock_offset(self) -> float | None:
        """Device clock minus receive clock (s), None until learned."""
        return self._clock_offset

    @clock_offset.setter
    def clock_offset(self, value: float | None) -> None:
        self._clock_offset = offset_or_none(value)

    def subscriptions(self) -> list[str]:
        return subscriptions(self.prefix)

    def parse(self, topic: str, payload: bytes | str, received_at: float) -> Reading:
        """One frame -> Reading, or raise a ParseError subclass (nothing else).

        ``energy_wh`` is only set when this frame carried ``aenergy.total``: a
        NotifyStatus delta with it, a NotifyFullStatus, a status topic or an
        RPC reply with a component status that has it.
        """
        try:
            if topic.startswith(self._prefix_slash):
                rest = topic[self._skip :]
                if rest == "events/rpc":
                    return self._event(payload, received_at)
                if rest == "online":
                    return self._online(payload, received_at)
                if rest[:7] == "status/" or rest == "status":
                    return self._status_topic(rest[7:], payload, received_at)
                if rest == "rpc":
                    raise NotAReading("RPC request sent to the device", "rpc_request")
                if rest.endswith("/rpc"):  # a reply, on "<prefix>/<our src>/rpc"
                    return self._reply(payload, received_at)
                raise NotAReading(f"sub-topic {rest!r} has no reading", "other_topic")
            if topic.endswith("/rpc") and not topic.endswith("/events/rpc"):
                return self._reply(payload, received_at)  # on "<caller src>/rpc"
            raise NotAReading(
                f"topic {topic!r} is not under the prefix", "foreign_topic"
            )
        except ParseError:
            raise
        except Exception as exc:  # contract: only ParseError escapes
            raise unexpected(exc) from exc

    def _online(self, payload: bytes | str, received_at: float) -> Reading:
        ts, ts_source = self._offset_time(received_at)
        return Reading(
            ts=ts,
            received_at=received_at,
            online=online_flag(payload),
            device_key=self.prefix,
            ts_source=ts_source,
            source="online",
        )

    def _event(self, payload: bytes | str, received_at: float) -> Reading:
        frame = load_object(payload, self.limits)
        params = frame.get("params")
        if type(params) is not dict:
            raise UnexpectedShape("events/rpc frame without a params object")
        ts = params.get("ts")
        if ts is not None and not (
            type(ts) is float and SYNCED_TS_MIN <= ts < SYNCED_TS_MAX
        ):
            ts = device_time(ts)  # unsynced (None), broken clock, or refused
        synced = ts
        ts = plausible_time(ts, received_at, self.limits)  # a clock far off
        not_believed = synced is not None and ts is None
        src = frame.get("src")
        if type(src) is not str or not src:
            src = None
        method = frame.get("method")
        if method == "NotifyStatus":
            full, source = False, "notify_status"
        elif method == "NotifyFullStatus":
            full, source = True, "notify_full_status"
        else:
            self._learn(ts, received_at, src)
            if method == "NotifyEvent":
                raise NotAReading("device event", "notify_event")
            raise NotAReading(f"method {method!r} carries no status", "unknown_method")
        comp = params.get(self.component)
        data = params.get(self._data) if self._data else None
        if comp is None and data is None:
            self._learn(ts, received_at, src)
            raise NotAReading(f"no {self.component} in this frame", "no_component")
        state = self._status.copy() if comp is None else self._merged(comp, full)
        if data is not None:
            self._merge_data(state, data)
        if ts is not None:
            newest = self._newest_ts
            if newest is not None and ts < newest:
                # Merging it would put old values back and repeat them with
                # every later delta; equal ts (one instant, two frames) merges.
                raise NotAReading(
                    f"ts {ts!r} is older than {newest!r}, already merged", "stale"
                )
            if ts != newest:
                self._at_newest.clear()
            elif payload in self._at_newest:  # sent again after a later one
                raise NotAReading(f"ts {ts!r}: this frame is merged", "stale")
            self._at_newest.append(payload)
            self._newest_ts = ts
        # Validated and not stale: only now may the frame change what we know.
        self._status = state
        self._learn(ts, received_at, src)
        if ts is None:
            ts = received_at
            ts_source = TS_NOT_BELIEVED if not_believed else TS_RECEIVED
        else:
            ts_source = TS_DEVICE
        return self._reading(
            state,
            ts,
            received_at,
            ts_source,
            src,
            source,
            self._fresh(comp, data, full),
        )

    def _fresh(self, comp: Any, data: Any, full: bool) -> bool:
        """Did this frame carry the counter?"""
        if self._data is None:
            aenergy = comp.get("aenergy")
            return full or (type(aenergy) is dict and "total" in aenergy)
        return type(data) is dict and self._energy_key in data

    def _status_topic(
        self, name: str, payload: bytes | str, received_at: float
    ) -> Reading:
        # Any: a whole status object, or the component's (unchecked) value.
        status: Any = load_object(payload, self.limits)
        data = None
        if name == self._data:  # the counter's own component: status/emdata:0
            status, data = None, status
        elif name != self.component:
            # A whole device status (<prefix>/status) or another component.
            if self._data and not name:
                data = status.get(self._data)
            status = status.get(self.component)
            if status is None and data is None:
                code = "other_component" if name else "no_component"
                raise NotAReading(f"no {self.component} in this status", code)
        return self._whole(status, data, received_at, None, "status")

    def _reply(self, payload: bytes | str, received_at: float) -> Reading:
        frame = load_object(payload, self.limits)
        error = frame.get("error")
        if error is not None:
            if type(error) is dict:
                detail = f"code {error.get('code')!r}: {error.get('message')!s}"
            else:
                detail = str(error)
            raise NotAReading(detail[:200], "rpc_error")
        if "result" not in frame:
            if "method" in frame:
                raise NotAReading("RPC request, not a reply", "rpc_request")
            raise UnexpectedShape("RPC frame with neither result nor error")
        src = frame.get("src")
        if type(src) is not str or not src:
            src = None
        if src and self._device_id and src != self._device_id:
            raise NotAReading(
                f"reply from {src!r}, this parser reads {self._device_id!r}",
                "foreign_reply",
            )
        result = frame["result"]
        status = data = None
        if type(result) is dict:
            status = result.get(self.component)  # a Shelly.GetStatus answer
            if self._data:
                data = result.get(self._data)
            if (
                status is None
                and data is None
                and result.get("id") == self._index
                and type(result.get("id")) is int
                and any(key in result for key in _STATUS_KEYS)
            ):
                # A PM1/Switch/EM/EM1.GetStatus answer about this channel (the
                # answer about em1:0 must not become em1:1's power).
                status = result
        if status is None and data is None:
            raise NotAReading("reply carries no component status", "rpc_result")
        return self._whole(status, data, received_at, src, "rpc_reply")

    def _whole(
        self,
        status: Any,
        data: Any,
        received_at: float,
        src: str | None,
        source: str,
    ) -> Reading:
        """The reading of a whole component status and/or its counters (a
        status topic or a poll reply): they carry no device time of their own."""
        state = self._status.copy() if status is None else self._merged(status, True)
        if data is not None:
            self._merge_data(state, data)
        self._status = state
        ts, ts_source = self._offset_time(received_at)
        fresh = self._fresh(status or {}, data, True)
        return self._reading(state, ts, received_at, ts_source, src, source, fresh)

    def _merged(self, comp: Any, full: bool) -> dict[str, Any]:
        """Validate ``comp`` and return the new state; ``self`` is untouched."""
        return merged(
            self._status,
            comp,
            full,
            self.component,
            self._power_key,
            self._data is not None,
            self.limits,
        )

    def _merge_data(self, state: dict[str, Any], data: Any) -> None:
        merge_counter(state, data, self._data or "", self._energy_key)

    def _learn(self, ts: float | None, received_at: float, src: str | None) -> None:
        if ts is not None:
            self._clock_offset = ts - received_at
        if src is not None:
            self._device_id = src

    def _offset_time(self, received_at: float) -> tuple[float, str]:
        offset = self._clock_offset
        if offset is None:
            return received_at, TS_RECEIVED
        return received_at + offset, TS_OFFSET

    def _reading(
        self,
        state: dict[str, Any],
        ts: float,
        received_at: float,
        ts_source: str,
        src: str | None,
        source: str,
        fresh: bool,
    ) -> Reading:
        """The reading of ``state``; the energy counter only when ``fresh``."""
        device_key = src or self.prefix
        errors = errors_of(state)
        if errors:
            return Reading(
                ts=ts,
                received_at=received_at,
                meter_errors=tuple(errors),
                device_key=device_key,
                ts_source=ts_source,
                source=source,
            )
        watts = state.get("apower")
        aenergy = state.get("aenergy") if fresh else None
        if watts is None and aenergy is None:
            raise NotAReading(f"no power known yet for {self.component}", "no_power")
        return Reading(
            ts=ts,
            received_at=received_at,
            power_w=watts,
            energy_wh=aenergy["total"] if aenergy else None,
            voltage_v=state.get("voltage"),
            current_a=state.get("current"),
            device_key=device_key,
            ts_source=ts_source,
            source=source,
        )

    def held_power(self) -> float | None:
        """The power this channel holds (None: unknown, or a meter error)."""
        return self._status.get("apower")

    def held_energy(self) -> float | None:
        aenergy = self._status.get("aenergy")
        return aenergy["total"] if aenergy else None

    def held_errors(self) -> list[str]:
        return errors_of(self._status)

    def snapshot(self) -> dict[str, Any]:
        """Primitives to persist, so a restarted runtime merges deltas on."""
        status = dict(self._status)
        if "aenergy" in status:
            status["aenergy"] = dict(status["aenergy"])
        for key in ERROR_KEYS:
            if key in status:
                status[key] = list(status[key])
        return {
            "component": self.component,
            "status": status,
            "newest_ts": self._newest_ts,
            "clock_offset": self._clock_offset,
            "device_id": self._device_id,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back a :meth:`snapshot`; invalid parts are dropped, not raised.

        A corrupt snapshot must not stop a device from being read: the worst
        case is starting fresh, exactly as with no snapshot at all. Snapshots
        from before ``newest_ts`` existed restore without a stale check.
        """
        if type(state) is not dict:
            state = {}
        status = state.get("status")
        newest_ts = state.get("newest_ts")
        if state.get("component", self.component) != self.component:
            # The device was reconfigured to another component.
            status = newest_ts = None
        if type(status) is dict and "apower" in status:
            # Held under "apower" whatever the profile reads (act_power, ...).
            status = {k: v for k, v in status.items() if k != "apower"}
            status[self._power_key] = state["status"]["apower"]
        try:
            self._status = self._merged(status, True) if type(status) is dict else {}
        except ParseError:
            self._status = {}
        try:
            self._newest_ts = device_time(newest_ts)  # None unless synced
        except ParseError:
            self._newest_ts = None
        try:
            self.clock_offset = state.get("clock_offset")
        except ValueError:
            self._clock_offset = None
        device_id = state.get("device_id")
        self._device_id = device_id if type(device_id) is str and device_id else None
