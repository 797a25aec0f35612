"""Payload decoding and number validation shared by every parser.

Everything that turns untrusted bytes into trusted numbers lives here, so the
rules (size cap before decoding, strict UTF-8, no NaN, bool is not a number,
bounded nesting) are the same for Shelly, Gen1 and generic frames.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NoReturn, TypeAlias

from .exceptions import (
    InvalidValue,
    MalformedJson,
    NotUtf8,
    PayloadTooLarge,
    RejectedPayload,
    UnexpectedShape,
)

# A device clock counts as synced from 2001-09-09 on (ts >= 1e9, as Shelly's
# firmware dates frames before its clock is set: seconds since boot);
# 1e10 (year 2286) and later is a broken clock, treated like an unsynced one.
SYNCED_TS_MIN: Final = 1e9
SYNCED_TS_MAX: Final = 1e10

# What a parser accepts as an MQTT payload (paho hands over bytes).
Payload: TypeAlias = bytes | bytearray | memoryview | str


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps against broken or hostile devices (per parser, hashable)."""

    max_payload_bytes: int = 65536
    max_power_w: float = 100000.0
    negative_tolerance_w: float = 1.0
    max_json_depth: int = 32
    # A synced clock further ahead of the receive time than this is not
    # believed (one frame dated years ahead would make every later frame look
    # stale); one further behind neither, but that bound must exceed the
    # longest backlog a broker may deliver late (a persistent session's
    # expiry), so redelivered readings keep their own time.  None: no check,
    # for replays whose "receive time" is not a real clock; the live runner
    # sets both (services/engine/fleet.py).
    max_clock_ahead_s: float | None = None
    max_clock_behind_s: float | None = None


DEFAULT_LIMITS: Final = Limits()


class _NonFiniteConstant(Exception):
    """Raised from inside the JSON scanner when it meets NaN or Infinity."""


def _reject_constant(name: str) -> NoReturn:
    raise _NonFiniteConstant(name)


# One decoder for all: Python's json accepts NaN/Infinity by default, which
# no real firmware sends; refusing them in the scanner costs nothing.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# scan_once is an instance attribute JSONDecoder.__init__ sets, undocumented and
# so missing from typeshed: the annotation gives it the C scanner's signature.
_SCAN: Callable[[str, int], tuple[Any, int]]
_SCAN = _DECODER.scan_once  # type: ignore[attr-defined]
_JSON_WS: Final = " \t\n\r"


def decode_text(payload: Payload, limits: Limits = DEFAULT_LIMITS) -> str:
    """Return the payload as ``str``; size is checked before any decoding."""
    if type(payload) is bytes:
        if len(payload) > limits.max_payload_bytes:
            raise PayloadTooLarge(f"{len(payload)} bytes > {limits.max_payload_bytes}")
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotUtf8(str(exc)) from None
    if type(payload) is str:
        if len(payload) > limits.max_payload_bytes:
            raise PayloadTooLarge(
                f"{len(payload)} characters > {limits.max_payload_bytes} bytes"
            )
        if not payload.isascii():
            try:
                size = len(payload.encode("utf-8"))
            except UnicodeEncodeError as exc:
                raise NotUtf8(str(exc)) from None
            if size > limits.max_payload_bytes:
                raise PayloadTooLarge(f"{size} bytes > {limits.max_payload_bytes}")
        return payload
    if isinstance(payload, (bytearray, memoryview)):
        return decode_text(bytes(payload), limits)
    raise UnexpectedShape(
        f"payload must be bytes or str, not {type(payload).__name__}",
        code="unexpected_shape",
    )


def load_json(payload: Payload, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Decode a payload into a JSON value, or raise a RejectedPayload."""
    if type(payload) is bytes and len(payload) <= limits.max_payload_bytes:
        try:  # the hot path, inlined: one call less per message
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotUtf8(str(exc)) from None
    else:
        text = decode_text(payload, limits)
    try:
        # scan_once skips json.loads' two whitespace regex matches (~20 %).
        value, end = _SCAN(text, 0)
    except StopIteration as exc:
        stripped = text.lstrip(_JSON_WS)
        if stripped == text or not stripped:
            raise MalformedJson(f"expecting a value at char {exc.value}") from None
        return load_json(stripped, limits)
    except _NonFiniteConstant as exc:
        raise InvalidValue(f"{exc.args[0]} is not a number", "non_finite") from None
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"{exc.msg} at char {exc.pos}") from None
    except RecursionError:
        raise RejectedPayload("JSON nested too deep", code="too_deep") from None
    except ValueError as exc:  # e.g. an integer literal with > 4300 digits
        raise MalformedJson(str(exc)[:200]) from None
    if end != len(text) and text[end:].strip(_JSON_WS):
        raise MalformedJson(f"extra data after the JSON value at char {end}")
    limit = limits.max_json_depth
    # Cheap bound first: fewer brackets than the limit cannot nest deeper.
    if text.count("{") + text.count("[") > limit and _too_deep(value, limit):
        raise RejectedPayload(f"JSON nested deeper than {limit}", code="too_deep")
    return value


def load_object(payload: Payload, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Decode a payload that must be a JSON object."""
    value = load_json(payload, limits)
    if type(value) is not dict:
        raise UnexpectedShape(f"expected a JSON object, got {_kind(value)}")
    return value


def _too_deep(value: Any, limit: int) -> bool:
    """Iterative container walk: no Python recursion on hostile input."""
    stack = [(value, 1)]
    pop = stack.pop
    push = stack.append
    while stack:
        node, depth = pop()
        if type(node) is dict:
            node = node.values()
        for child in node:
            kind = type(child)
            if kind is dict or kind is list:
                if depth >= limit:
                    return True
                push((child, depth + 1))
    return False


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "number"
    )


def number(value: Any, field: str) -> float:
    """A finite JSON number as float; bool, str, NaN and Infinity are refused."""
    kind = type(value)
    if kind is float:
        if value - value == 0.0:  # false for NaN and +-Infinity
            return value
        raise InvalidValue(f"{field} is not finite", "non_finite")
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            raise InvalidValue(f"{field} is out of range", "out_of_range") from None
    raise InvalidValue(f"{field} must be a number, not {_kind(value)}", "not_a_number")


def power(value: Any, limits: Limits = DEFAULT_LIMITS, field: str = "power") -> float:
    """Validated power in W; small negative meter noise becomes 0.0."""
    watts = number(value, field)
    if watts < 0.0:
        if watts < -limits.negative_tolerance_w:
            raise InvalidValue(f"{field} {watts} W is negative", "negative_power")
        return 0.0
    if watts > limits.max_power_w:
        raise InvalidValue(
            f"{field} {watts} W > {limits.max_power_w} W", "absurd_power"
        )
    return watts


def energy(value: Any, field: str = "energy") -> float:
    """Validated cumulative energy counter (never negative)."""
    wh = number(value, field)
    if wh < 0.0:
        raise InvalidValue(f"{field} {wh} is negative", "negative_energy")
    return wh


def plausible_time(
    ts: float | None, received_at: float, limits: Limits
) -> float | None:
    """``ts`` if within the clock limits around the receive time, else None."""
    if ts is None:
        return None
    ahead, behind = limits.max_clock_ahead_s, limits.max_clock_behind_s
    if ahead is not None and ts - received_at > ahead:
        return None
    if behind is not None and received_at - ts > behind:
        return None
    return ts


def device_time(value: Any) -> float | None:
    """Synced device time, or None when the clock is not synced (or broken)."""
    kind = type(value)
    if kind is not float and kind is not int:
        raise InvalidValue(f"ts must be a number, not {_kind(value)}", "invalid_ts")
    if not 0 <= value < 1e300:  # also false for NaN
        raise InvalidValue(f"ts {value!r} is not a valid time", "invalid_ts")
    if SYNCED_TS_MIN <= value < SYNCED_TS_MAX:
        return float(value)
    return None


_ONLINE: Final = {"true": True, "false": False}


def online_flag(payload: Payload) -> bool:
    """The plain-text ``true``/``false`` of an ``<prefix>/online`` topic."""
    if type(payload) is str:
        text: str | None = payload
    elif isinstance(payload, (bytes, bytearray, memoryview)):
        raw = bytes(payload[:64])
        text = raw.decode("ascii", "replace")
    else:
        text = None
    flag: bool | None = None
    if text is not None and len(payload) <= 64:
        flag = _ONLINE.get(text.strip().lower())
    if flag is None:
        raise UnexpectedShape("online payload must be true or false", "invalid_online")
    return flag


def offset_or_none(value: Any) -> float | None:
    """Validate a clock offset restored from outside (None, or finite)."""
    if value is None:
        return None
    if type(value) not in (int, float) or not -1e12 < value < 1e12:
        raise ValueError(f"clock_offset must be a finite number, not {value!r}")
    return float(value)
