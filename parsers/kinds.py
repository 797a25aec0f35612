"""The kinds of meter: one row each, read by every site that needs one.

A machine's ``parser_type`` names its row.  The model's choices and form,
the parser factory, the subscriptions, the runner's polls and discovery
read the row, never the name: adding a kind of meter touches its parser,
its fixtures and this table.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from . import gen1_parser, generic_parser, shelly_parser, shelly_rpc


def _(label: str) -> str:
    """Marks a label for the translation catalog; the Odoo layer translates
    it where it shows it (``mqtt.device._selection_parser_type``)."""
    return label


PREFIX: Final = "prefix"  # the meter is addressed by its topic prefix
FILTER: Final = "filter"  # by a topic filter (MQTT wildcards)


@dataclass(frozen=True, slots=True)
class MeterKind:
    """Everything the addon knows of one kind of meter.

    ``parser(address, component, limits, **options)`` makes the parser of
    one channel (``address``: the prefix or the filter); ``options``: the
    option names it takes, ``option_fields``: which ``mqtt.device`` field
    holds which option;
    ``default_component`` is None for a kind without channels (the form
    then hides the channel); ``pollable``: the runner asks it for its status
    (Gen2+ RPC over MQTT); ``discovers``: a frame of an unknown one of its
    kind can be proposed as a machine."""

    label: str
    parser: Callable[..., Any]
    subscriptions: Callable[[str], list[str]]
    addressing: str = PREFIX
    default_component: str | None = None
    options: tuple[str, ...] = ()
    option_fields: tuple[tuple[str, str], ...] = ()
    pollable: bool = False
    discovers: bool = False


METER_KINDS: Final[dict[str, MeterKind]] = {
    "shelly_gen2": MeterKind(
        label=_("Shelly Gen2/Gen3/Gen4 (RPC, e.g. PM Mini Gen3)"),
        parser=shelly_parser.ShellyGen2Parser,
        subscriptions=shelly_rpc.subscriptions,
        default_component="pm1:0",
        pollable=True,
        discovers=True,
    ),
    "shelly_gen1": MeterKind(
        label=_("Shelly Gen1"),
        parser=gen1_parser.ShellyGen1Parser,
        subscriptions=gen1_parser.subscriptions,
        default_component="relay:0",
    ),
    "generic_json": MeterKind(
        label=_("Generic JSON or plain number"),
        parser=generic_parser.GenericJsonParser,
        subscriptions=generic_parser.subscriptions,
        addressing=FILTER,
        options=("power_path", "energy_path", "ts_path", "energy_scale"),
        option_fields=(
            ("power_path", "json_power_path"),
            ("energy_path", "json_energy_path"),
        ),
    ),
}


# The kind a newly seen meter is proposed as (discovery).
DISCOVERING: Final = next(key for key, kind in METER_KINDS.items() if kind.discovers)


def meter_kind(parser_type: str) -> MeterKind:
    """The row of ``parser_type``; ValueError for one the table lacks."""
    kind = METER_KINDS.get(parser_type)
    if kind is None:
        raise ValueError(
            f"unknown parser type {parser_type!r}; "
            f"expected one of: {', '.join(METER_KINDS)}"
        )
    return kind
