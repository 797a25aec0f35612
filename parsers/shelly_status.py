"""What a Shelly Gen2+ component's status holds, and how a frame changes it.

A NotifyStatus is overlaid on the status known before (Shelly's documented
contract: the overlay equals a fresh GetStatus); a whole status (status
topic, poll reply, NotifyFullStatus) replaces it.  The state keeps the power
under ``apower`` whatever the profile calls it, the counter under
``aenergy``, and the meter's errors; a failing meter's power is not held.
"""

from typing import Any, Final

from .exceptions import UnexpectedShape
from .values import Limits, energy, number, power

_PLAIN_KEYS: Final = ("voltage", "current")
_PHASE_ERRORS: Final = ("a_errors", "b_errors", "c_errors", "n_errors")
ERROR_KEYS: Final = ("errors", *_PHASE_ERRORS)
_ERROR_SET: Final = frozenset(ERROR_KEYS)


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


def errors_of(state: dict[str, Any]) -> list[str]:
    """The meter's errors, a three-phase meter's per phase ("phase a: ...")."""
    if _ERROR_SET.isdisjoint(state):
        return []  # the common case, on every reading: no lists built
    errors = list(state.get("errors") or ())
    for phase in _PHASE_ERRORS:
        errors.extend(f"phase {phase[0]}: {e}" for e in state.get(phase, ()))
    return errors


# Conditions a meter reports beside a valid power: the phases turn A-C-B, no
# load on the clamps.  Only the others (power_meter_failure, ct_type_not_set,
# out_of_range:...) make its power untrusted.
_WARNINGS: Final = frozenset(("phase_sequence", "no_load"))


def _merge_errors(state: dict[str, Any], value: Any, key: str = "errors") -> None:
    if value is None or value == []:
        state.pop(key, None)
    elif type(value) is list and all(type(e) is str for e in value):
        failures = [e for e in value if e not in _WARNINGS]
        if failures:
            state[key] = failures
        else:
            state.pop(key, None)
    else:
        raise UnexpectedShape(f"{key} must be a list of strings", "invalid_errors")


def merged(
    held: dict[str, Any],
    comp: Any,
    full: bool,
    component: str,
    power_key: str,
    counter_apart: bool,
    limits: Limits,
) -> dict[str, Any]:
    """The state after ``comp`` (a delta on ``held``, or whole when ``full``);
    ``held`` is untouched.  ``counter_apart``: the counter lives in another
    component (emdata:N), so a whole status of this one keeps it."""
    if type(comp) is not dict:
        raise UnexpectedShape(f"{component} status must be an object")
    state = {} if full else held.copy()
    if full and counter_apart and "aenergy" in held:
        state["aenergy"] = held["aenergy"]  # kept in another component
    # Inline fast paths for the common finite float; anything else goes
    # through the full checks in values.py (which raise with a reason).
    if power_key in comp:
        value = comp[power_key]
        if type(value) is float and 0.0 <= value <= limits.max_power_w:
            state["apower"] = value
        elif value is None:
            state.pop("apower", None)
        else:
            state["apower"] = power(value, limits, power_key)
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
    # A delta leaves out what did not change, errors too: they end with
    # null or [] there, or with a whole status without them (state = {}).
    if not _ERROR_SET.isdisjoint(comp):
        for name in ERROR_KEYS:  # a_errors...: one phase's
            if name in comp:
                _merge_errors(state, comp[name], name)
    if not _ERROR_SET.isdisjoint(state):
        # A failing meter's power is untrusted: do not hold it either.
        state.pop("apower", None)
    return state


def merge_counter(state: dict[str, Any], data: Any, name: str, key: str) -> None:
    """The counter of an EM/EM1 from its data component ``name`` (emdata:N)."""
    if type(data) is not dict:
        raise UnexpectedShape(f"{name} status must be an object")
    if key in data:  # else an early firmware's {"id": 0}
        total = data[key]
        if total is None:
            state.pop("aenergy", None)
        else:
            state["aenergy"] = {"total": energy(total, key)}
