"""Build a parser from a device record's fields, by its kind's row
(``kinds.METER_KINDS``): the model stores ``parser_type`` plus
prefix/filter/component/options, this maps them to a parser object without
the model importing each class.
"""

from typing import Any, Protocol

from . import shelly_rpc, summed
from .kinds import FILTER, meter_kind
from .reading import Reading
from .values import DEFAULT_LIMITS, Limits


class Parser(Protocol):
    """What the engine uses of a per-device parser (every parser class here).

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
    """A fresh per-device parser; ValueError with a clear reason if misconfigured.

    What a kind needs (a prefix or a filter, a channel, options) is its row
    in ``METER_KINDS``; a channel list ``"em1:0+em1:1"`` sums its channels."""
    kind = meter_kind(parser_type)
    limits = limits or DEFAULT_LIMITS
    # Odoo hands empty fields over as False: unset, so the defaults apply.
    options = {
        k: v
        for k, v in (options or {}).items()
        if v is not None and v is not False and v != ""
    }
    unknown = sorted(set(options) - set(kind.options))
    if unknown and not kind.options:
        raise ValueError(f"parser type {parser_type!r} takes no options")
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for {parser_type}; "
            f"allowed: {', '.join(kind.options)}"
        )
    if kind.addressing == FILTER:
        address = _require(topic_filter, "topic filter", parser_type)
        return kind.parser(address, limits=limits, **options)
    address = _require(prefix, "topic prefix", parser_type)
    if kind.default_component is None:
        return kind.parser(address, limits=limits, **options)
    component = component or kind.default_component
    if "+" in component:  # one machine on several channels
        parts = shelly_rpc.channels(component)
        return summed.SummedParser(
            [kind.parser(address, part, limits, **options) for part in parts]
        )
    return kind.parser(address, component, limits, **options)


def subscriptions_for(
    parser_type: str, *, prefix: str | None = None, topic_filter: str | None = None
) -> list[str]:
    """Topic filters the runner must subscribe for one device."""
    kind = meter_kind(parser_type)
    if kind.addressing == FILTER:
        return kind.subscriptions(_require(topic_filter, "topic filter", parser_type))
    return kind.subscriptions(_require(prefix, "topic prefix", parser_type))
