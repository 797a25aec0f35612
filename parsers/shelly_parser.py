"""Shelly Gen2/Gen3 (RPC) frames: NotifyStatus deltas, status topics, replies.

One parser per device: NotifyStatus only carries the fields that changed, so
the parser keeps the last known component status and merges each delta onto
it (a missing ``apower`` is "unchanged", never 0). It also learns the offset
between the device clock and ours, so frames without device time (status
topics, poll replies, online) land on the device clock too.

Power, voltage and current are held and repeated on every reading; the energy
counter is held too, but ``Reading.energy_wh`` is set only when the frame
itself carried a fresh ``aenergy.total`` (the session detector takes every
energy value as a new counter sample). A NotifyStatus/NotifyFullStatus whose
synced ``ts`` is older than the newest one merged is stale (a redelivery or
an out-of-order frame): ``NotAReading("stale")``, and nothing is merged.
"""

import json
from typing import Any, Final

from .exceptions import (
    NotAReading,
    ParseError,
    UnexpectedShape,
    unexpected,
)
from .reading import TS_DEVICE, TS_OFFSET, TS_RECEIVED, Reading
from .topic_filter import validate_topic
from .values import (
    DEFAULT_LIMITS,
    SYNCED_TS_MAX,
    SYNCED_TS_MIN,
    Limits,
    Payload,
    device_time,
    energy,
    load_object,
    number,
    offset_or_none,
    online_flag,
    plausible_time,
    power,
)

_POLL_METHODS: Final = {
    "pm1": "PM1.GetStatus",
    "switch": "Switch.GetStatus",
    "light": "Light.GetStatus",
}
# Keys that make an RPC ``result`` a component status (PM1/Switch.GetStatus),
# not the answer to some other call such as Switch.Set ({"was_on": true}).
_PLAIN_KEYS: Final = ("voltage", "current")
_STATUS_KEYS: Final = ("apower", "aenergy", "voltage", "current", "output", "errors")


def split_component(component: str) -> tuple[str, int]:
    """``"pm1:0"`` -> ``("pm1", 0)``; ValueError for anything else."""
    kind, sep, index = (
        component.partition(":") if type(component) is str else ("", "", "")
    )
    if not (sep and kind and index.isdigit() and index.isascii()):
        raise ValueError(f"component must look like 'pm1:0', not {component!r}")
    return kind, int(index)


def subscriptions(prefix: str) -> list[str]:
    """Topic filters the bridge subscribes for one Gen2+ device.

    RPC replies arrive on ``<bridge src>/rpc``, which the bridge subscribes
    once for all devices and routes with :func:`reply_route`.
    """
    validate_topic(prefix)
    return [f"{prefix}/events/rpc", f"{prefix}/status/+", f"{prefix}/online"]


def poll_request(component: str, request_id: int, src: str) -> tuple[str, str]:
    """``("rpc", json)``: publish the JSON on ``<prefix>/rpc`` to poll status."""
    kind, index = split_component(component)
    method = _POLL_METHODS.get(kind)
    if method is None:
        raise ValueError(
            f"cannot poll component {component!r}: only "
            f"{', '.join(k + ':N' for k in _POLL_METHODS)} have a GetStatus call"
        )
    if type(request_id) is not int:
        raise ValueError(f"request_id must be an int, not {request_id!r}")
    validate_topic(src)  # the reply is published on "<src>/rpc"
    frame = {"id": request_id, "src": src, "method": method, "params": {"id": index}}
    return "rpc", json.dumps(frame, separators=(",", ":"))


def reply_route(payload: Payload) -> tuple[int, str] | None:
    """``(request_id, device_src)`` of an RPC reply frame, else None.

    Lets the bridge find which device a reply on its own ``<src>/rpc`` topic
    belongs to before handing it to that device's parser. Never raises.
    """
    try:
        frame = load_object(payload)
        if "result" not in frame and "error" not in frame:
            return None
        request_id = frame.get("id")
        src = frame.get("src")
        if type(request_id) is int and type(src) is str and src:
            return request_id, src
    except Exception:  # noqa: BLE001 - a peek must never break the caller
        return None
    return None


def _merge_energy(state: dict[str, Any], value: Any) -> None:
    if type(value) is dict:
        if "total" in value:  # else only by_minute moved: keep the total
            total = value["total"]
            if total is None:
                state.pop("aenergy", None)
            else:
                state["aenergy"] = {"total": energy(total, "aenergy.total")}
    elif value is None:
        state.pop("aenergy", None)
    else:
        raise UnexpectedShape("aenergy must be an object")


def _merge_errors(state: dict[str, Any], value: Any) -> None:
    if value is None or value == []:
        state.pop("errors", None)
    elif type(value) is list and all(type(e) is str for e in value):
        state["errors"] = list(value)
    else:
        raise UnexpectedShape("errors must be a list of strings", "invalid_errors")


class ShellyGen2Parser:
    """Parser for one Gen2/Gen3 device and one of its metering components."""

    def __init__(
        self, prefix: str, component: str = "pm1:0", limits: Limits = DEFAULT_LIMITS
    ) -> None:
        validate_topic(prefix)
        split_component(component)
        self.prefix = prefix
        self.component = component
        self.limits = limits
        self._prefix_slash = prefix + "/"
        self._skip = len(prefix) + 1
        # The merged component status: apower, voltage, current (float),
        # aenergy ({"total": float}) and errors (list[str]), each when known.
        self._status: dict[str, Any] = {}
        # newest synced params.ts merged into _status
        self._newest_ts: float | None = None
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
        ts = plausible_time(ts, received_at, self.limits)  # a clock years off
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
        if comp is None:
            self._learn(ts, received_at, src)
            raise NotAReading(f"no {self.component} in this frame", "no_component")
        state = self._merged(comp, full)
        if ts is not None:
            newest = self._newest_ts
            if newest is not None and ts < newest:
                # Merging it would put old values back and repeat them with
                # every later delta; equal ts (one instant, two frames) merges.
                raise NotAReading(
                    f"ts {ts!r} is older than {newest!r}, already merged", "stale"
                )
            self._newest_ts = ts
        # Validated and not stale: only now may the frame change what we know.
        self._status = state
        self._learn(ts, received_at, src)
        if ts is None:
            ts, ts_source = received_at, TS_RECEIVED
        else:
            ts_source = TS_DEVICE
        aenergy = comp.get("aenergy")
        fresh = full or (type(aenergy) is dict and "total" in aenergy)
        return self._reading(state, ts, received_at, ts_source, src, source, fresh)

    def _status_topic(
        self, name: str, payload: bytes | str, received_at: float
    ) -> Reading:
        # Any: a whole status object, or the component's (unchecked) value.
        status: Any = load_object(payload, self.limits)
        if name != self.component:
            # A whole device status (<prefix>/status) or another component.
            status = status.get(self.component)
            if status is None:
                code = "other_component" if name else "no_component"
                raise NotAReading(f"no {self.component} in this status", code)
        state = self._merged(status, True)
        self._status = state
        ts, ts_source = self._offset_time(received_at)
        return self._reading(state, ts, received_at, ts_source, None, "status", True)

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
        status = None
        if type(result) is dict:
            status = result.get(self.component)  # a Shelly.GetStatus answer
            if (
                status is None
                and type(result.get("id")) is int
                and any(key in result for key in _STATUS_KEYS)
            ):
                status = result  # a PM1/Switch/Light.GetStatus answer
        if status is None:
            raise NotAReading("reply carries no component status", "rpc_result")
        state = self._merged(status, True)
        self._status = state
        ts, ts_source = self._offset_time(received_at)
        return self._reading(state, ts, received_at, ts_source, src, "rpc_reply", True)

    def _merged(self, comp: Any, full: bool) -> dict[str, Any]:
        """Validate ``comp`` and return the new state; ``self`` is untouched."""
        if type(comp) is not dict:
            raise UnexpectedShape(f"{self.component} status must be an object")
        state = {} if full else self._status.copy()
        # Inline fast paths for the common finite float; anything else goes
        # through the full checks in values.py (which raise with a reason).
        if "apower" in comp:
            value = comp["apower"]
            if type(value) is float and 0.0 <= value <= self.limits.max_power_w:
                state["apower"] = value
            elif value is None:
                state.pop("apower", None)
            else:
                state["apower"] = power(value, self.limits, "apower")
        for key in _PLAIN_KEYS:
            if key in comp:
                value = comp[key]
                if type(value) is float and value - value == 0.0:
                    state[key] = value
                elif value is None:
                    state.pop(key, None)
                else:
                    state[key] = number(value, key)
        if "aenergy" in comp:
            _merge_energy(state, comp["aenergy"])
        if "errors" in comp:
            _merge_errors(state, comp["errors"])
        if "errors" in state:
            # A failing meter's power is untrusted: do not hold it either.
            state.pop("apower", None)
        return state

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
        errors = state.get("errors")
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
        if watts is None:
            raise NotAReading(f"no power known yet for {self.component}", "no_power")
        aenergy = state.get("aenergy") if fresh else None
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

    def snapshot(self) -> dict[str, Any]:
        """Primitives to persist, so a restarted runtime merges deltas on."""
        status = dict(self._status)
        if "aenergy" in status:
            status["aenergy"] = dict(status["aenergy"])
        if "errors" in status:
            status["errors"] = list(status["errors"])
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
