"""Build a parser from a device record's fields (the only place that knows them all).

The Odoo model stores ``parser_type`` plus prefix/filter/component/options;
this maps them to a parser object without the model importing each class.
"""

from typing import Any, Final, Protocol

from . import gen1_parser, generic_parser, shelly_parser, shelly_rpc, summed
from .reading import Reading
from .topic_filter import validate_filter
from .values import DEFAULT_LIMITS, Limits


class Parser(Protocol):
    """What the bridge uses of a per-device parser (every parser class here).

    ``parse`` raises nothing but ParseError subclasses; ``restore`` takes a
    ``snapshot`` back and drops what it cannot use instead of raising.
    """

    clock_offset: float | None

    def subscriptions(self) -> list[str]: ...

    def parse(
        self, topic: str, payload: bytes | str, received_at: float
    ) -> Reading: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


# parser_type -> human label (usable as an Odoo selection).
PARSER_TYPES: Final = {
    "shelly_gen2": "Shelly Gen2/Gen3 (RPC, e.g. PM Mini Gen3)",
    "shelly_gen1": "Shelly Gen1",
    "generic_json": "Generic JSON or plain number",
}

_GENERIC_OPTIONS: Final = ("power_path", "energy_path", "ts_path", "energy_scale")


def _check_type(parser_type: str) -> None:
    if parser_type not in PARSER_TYPES:
        raise ValueError(
            f"unknown parser type {parser_type!r}; "
            f"expected one of: {', '.join(PARSER_TYPES)}"
        )


def _require(value: str | None, name: str, parser_type: str) -> str:
    if not value:
        raise ValueError(f"parser type {parser_type!r} needs a {name}")
    return value


def make_parser(
    parser_type: str,
    *,
    prefix: str | None = None,
    topic_filter: str | None = None,
    component: str | None = None,
    options: dict[str, Any] | None = None,
    limits: Limits | None = None,
) -> Parser:
    """A fresh per-device parser; ValueError with a clear reason if misconfigured."""
    _check_type(parser_type)
    limits = limits or DEFAULT_LIMITS
    # Odoo hands empty fields over as False: unset, so the defaults apply.
    options = {
        k: v
        for k, v in (options or {}).items()
        if v is not None and v is not False and v != ""
    }
    if parser_type == "generic_json":
        unknown = sorted(set(options) - set(_GENERIC_OPTIONS))
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(unknown)} for generic_json; "
                f"allowed: {', '.join(_GENERIC_OPTIONS)}"
            )
        return generic_parser.GenericJsonParser(
            _require(topic_filter, "topic filter", parser_type),
            limits=limits,
            **options,
        )
    if options:
        raise ValueError(f"parser type {parser_type!r} takes no options")
    prefix = _require(prefix, "topic prefix", parser_type)
    cls = (
        shelly_parser.ShellyGen2Parser
        if parser_type == "shelly_gen2"
        else gen1_parser.ShellyGen1Parser
    )
    if component and "+" in component:  # one machine on several channels
        parts = shelly_rpc.channels(component)
        return summed.SummedParser([cls(prefix, part, limits) for part in parts])
    if component:
        return cls(prefix, component, limits)
    return cls(prefix, limits=limits)


def subscriptions_for(
    parser_type: str, *, prefix: str | None = None, topic_filter: str | None = None
) -> list[str]:
    """Topic filters the bridge must subscribe for one device."""
    _check_type(parser_type)
    if parser_type == "generic_json":
        topic_filter = _require(topic_filter, "topic filter", parser_type)
        validate_filter(topic_filter)
        return [topic_filter]
    prefix = _require(prefix, "topic prefix", parser_type)
    if parser_type == "shelly_gen2":
        return shelly_rpc.subscriptions(prefix)
    return gen1_parser.subscriptions(prefix)
