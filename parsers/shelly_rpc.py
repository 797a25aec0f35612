"""What a Gen2/Gen3/Gen4 Shelly offers over MQTT RPC, beside its frames.

Its metering components and where each keeps power and counter
(``PROFILES``), the topics to subscribe for a device, the status poll of a
component and how to route its reply, and which component a newly
discovered device is read on.  The frames themselves: ``shelly_parser``.
"""

import json
from dataclasses import dataclass
from typing import Any, Final

from .topic_filter import validate_topic
from .values import Payload, load_object


@dataclass(frozen=True, slots=True)
class Profile:
    """Where a kind of metering component keeps its power and its counter."""

    power_key: str  # the active power, W
    data: str | None  # the component holding the counter (None: this one)
    energy_key: str  # the counter, Wh ("total" of aenergy when data is None)
    poll: str  # the RPC method answering the component's status
    label: str  # what it is, for people


# Components whose power or counter is kept elsewhere than ``apower`` and
# ``aenergy.total``, and the common ones by name.  Any other component of a
# Gen2+ device (cover:N, rgb:N, rgbw:N, cct:N, ...) is read the common way,
# by what the device sends: one without power (cb:N, input:N) gives frames
# without a reading, counted, never a reading of 0 W.
PROFILES: Final = {
    "pm1": Profile("apower", None, "total", "PM1.GetStatus", "PM Mini Gen3/Gen4"),
    "switch": Profile(
        "apower", None, "total", "Switch.GetStatus", "Plus/Pro/Gen3/Gen4 1PM, 2PM, Plug"
    ),
    "light": Profile("apower", None, "total", "Light.GetStatus", "dimmer"),
    "cover": Profile(
        "apower", None, "total", "Cover.GetStatus", "a 2PM in its cover profile"
    ),
    "em": Profile(
        "total_act_power", "emdata", "total_act", "EM.GetStatus", "Pro 3EM, 3EM-63"
    ),
    "em1": Profile(
        "act_power",
        "em1data",
        "total_act_energy",
        "EM1.GetStatus",
        "Pro EM, EM Gen3/Gen4, EM Mini",
    ),
}
# Answers the status of every component at once: the poll of summed channels.
WHOLE_STATUS: Final = "Shelly.GetStatus"
# A component's RPC namespace is its kind with a capital, but for these.
_NAMESPACES: Final = {"rgb": "RGB", "rgbw": "RGBW", "cct": "CCT", "cb": "CB"}


def channels(component: str) -> list[str]:
    """The channels of a machine metered by several (``"em1:0 + em1:1"`` ->
    ``["em1:0", "em1:1"]``); one channel is a list of one."""
    return [part.strip() for part in component.split("+")]


def split_component(component: str) -> tuple[str, int]:
    """``"pm1:0"`` -> ``("pm1", 0)``; ValueError for anything else."""
    kind, sep, index = (
        component.partition(":") if type(component) is str else ("", "", "")
    )
    if not (sep and kind and index.isdigit() and index.isascii()):
        raise ValueError(f"component must look like 'pm1:0', not {component!r}")
    return kind, int(index)


def subscriptions(prefix: str) -> list[str]:
    """Topic filters the runner subscribes for one Gen2+ device (and, when
    it polls it, the device's reply topic: :func:`reply_src`)."""
    validate_topic(prefix)
    return [f"{prefix}/events/rpc", f"{prefix}/status/+", f"{prefix}/online"]


# A device id's model part -> the metering component it reports on, for a
# discovered device whose frame names none (first match wins; Gen4 ids such as
# shelly1pmg4-... and shellypmminig4-... follow their Gen3 kin).
DEVICE_COMPONENTS: Final = (
    ("shellypmmini", "pm1:0"),  # PM Mini Gen3/Gen4
    ("shellyplugpm", "pm1:0"),
    ("shellypro3em", "em:0"),  # Pro 3EM, -63, -400, -3CT63 (three-phase profile)
    ("shelly3em63", "em:0"),  # 3EM-63 Gen3
    ("shellyproem", "em1:0"),  # Pro EM-50
    ("shellyemmini", "em1:0"),  # EM Mini Gen4
    ("shellyem", "em1:0"),  # EM Gen3/Gen4
    ("shelly", "switch:0"),  # 1PM, 2PM, Plus/Pro/Mini/Gen4 switches, plugs
)
# The metering components a frame may name, the likeliest first.
_METERING: Final = (
    "em:",
    "em1:",
    "pm1:",
    "switch:",
    "cover:",
    "light:",
    "rgbw:",
    "rgb:",
    "cct:",
)


def discovered_component(device_id: str, keys: list[str]) -> str:
    """The component to read a newly seen Shelly on: one its frame names
    (``keys``: the frame's ``params`` keys), else the one its model reports on."""
    for kind in _METERING:
        for key in keys:
            if key.startswith(kind):
                return key
    model = device_id.lower()
    for prefix, component in DEVICE_COMPONENTS:
        if model.startswith(prefix):
            return component
    return "switch:0"


def profile_of(component: str) -> Profile:
    """The profile of ``"em:0"``, ``"cover:1"`` and the like (a kind not in
    ``PROFILES`` is read the common way); ValueError when it is no component
    name at all."""
    kind, _index = split_component(component)
    profile = PROFILES.get(kind)
    if profile is not None:
        return profile
    if not (kind.isascii() and kind.isalnum() and kind[0].isalpha() and kind.islower()):
        raise ValueError(f"{component!r} is not a Gen2+ Shelly component name")
    namespace = _NAMESPACES.get(kind, kind.capitalize())
    return Profile("apower", None, "total", f"{namespace}.GetStatus", kind)


def reply_src(prefix: str, client_id: str) -> str:
    """The ``src`` of a request to the meter at ``prefix``: it answers on
    ``<src>/rpc``, ``<prefix>/<client id>/rpc``, inside its own prefix, so
    a broker ACL that lets each meter write only under its prefix lets no
    meter answer for another (deploy/mosquitto/open_workshop.acl)."""
    return f"{prefix}/{client_id}"


def poll_request(component: str, request_id: int, src: str) -> tuple[str, str]:
    """``("rpc", json)``: publish the JSON on ``<prefix>/rpc`` to poll status.

    Summed channels (``"em1:0+em1:1"``) are polled with one Shelly.GetStatus."""
    if type(request_id) is not int:
        raise ValueError(f"request_id must be an int, not {request_id!r}")
    validate_topic(src)  # the reply is published on "<src>/rpc"
    frame: dict[str, Any]
    if "+" in component:
        for part in channels(component):
            profile_of(part)
        frame = {"id": request_id, "src": src, "method": WHOLE_STATUS}
    else:
        _kind, index = split_component(component)
        method = profile_of(component).poll
        frame = {
            "id": request_id,
            "src": src,
            "method": method,
            "params": {"id": index},
        }
    return "rpc", json.dumps(frame, separators=(",", ":"))


def reply_route(payload: Payload) -> tuple[int, str] | None:
    """``(request_id, device_src)`` of an RPC reply frame, else None.

    Lets the engine find which device a reply on its own ``<src>/rpc`` topic
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
