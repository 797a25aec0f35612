"""Pure parsing layer: MQTT frames -> Reading (standard library only).

Imported without Odoo (``python3 -c "import parsers.shelly_parser"``), so
everything here uses relative imports and never touches ``odoo``.
"""

from .exceptions import (
    InvalidValue,
    MalformedJson,
    NotAReading,
    NotUtf8,
    ParseError,
    PayloadTooLarge,
    RejectedPayload,
    UnexpectedShape,
)
from .factory import Parser, make_parser, subscriptions_for
from .gen1_parser import ShellyGen1Parser
from .kinds import DISCOVERING, FILTER, METER_KINDS, PREFIX, MeterKind, meter_kind
from .generic_parser import GenericJsonParser
from .reading import TS_DEVICE, TS_NOT_BELIEVED, TS_OFFSET, TS_RECEIVED, Reading
from .shelly_parser import ShellyGen2Parser
from .shelly_rpc import (
    channels,
    discovered_component,
    poll_request,
    reply_route,
    reply_src,
)
from .topic_filter import (
    TopicRouter,
    filter_covers,
    minimal_filters,
    topic_matches,
    validate_filter,
    validate_topic,
)
from .values import Limits

__all__ = [
    "DISCOVERING",
    "FILTER",
    "METER_KINDS",
    "PREFIX",
    "TS_DEVICE",
    "TS_NOT_BELIEVED",
    "TS_OFFSET",
    "TS_RECEIVED",
    "GenericJsonParser",
    "InvalidValue",
    "Limits",
    "MeterKind",
    "MalformedJson",
    "NotAReading",
    "NotUtf8",
    "ParseError",
    "Parser",
    "PayloadTooLarge",
    "Reading",
    "RejectedPayload",
    "ShellyGen1Parser",
    "ShellyGen2Parser",
    "TopicRouter",
    "UnexpectedShape",
    "channels",
    "discovered_component",
    "filter_covers",
    "make_parser",
    "meter_kind",
    "minimal_filters",
    "poll_request",
    "reply_route",
    "reply_src",
    "subscriptions_for",
    "topic_matches",
    "validate_filter",
    "validate_topic",
]
