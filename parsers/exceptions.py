"""Typed outcomes of parsing a meter frame that do not yield a reading.

Two families, because the engine treats them differently:

* ``NotAReading``: a well-formed frame that carries no measurement we use
  (a NotifyEvent, a ``sys`` delta, a debug log line, a Gen1 announce).
  Counted, never logged as a problem.
* ``RejectedPayload``: input that is broken or hostile (not UTF-8, not JSON,
  NaN, absurd power, too large).  Counted and logged (rate-limited) with the
  ``code`` and ``detail`` so an operator can see *why* a frame was refused.

Every exception carries a short machine ``code`` (stable, used in counters and
the raw log) and a human ``detail``.
"""


class ParseError(Exception):
    """Base class: a frame that produced no reading."""

    code = "parse_error"

    def __init__(self, detail: str = "", code: str | None = None) -> None:
        if code:
            self.code = code
        self.detail = detail
        super().__init__(f"{self.code}: {detail}" if detail else self.code)


class NotAReading(ParseError):
    """A valid frame without a power/energy/online measurement for us."""

    code = "not_a_reading"


class RejectedPayload(ParseError):
    """Broken or hostile input; never turned into a made-up reading."""

    code = "rejected"


class PayloadTooLarge(RejectedPayload):
    code = "too_large"


class NotUtf8(RejectedPayload):
    code = "not_utf8"


class MalformedJson(RejectedPayload):
    code = "malformed_json"


class InvalidValue(RejectedPayload):
    """A field has the wrong type or an impossible value (NaN, negative, huge)."""

    code = "invalid_value"


class UnexpectedShape(RejectedPayload):
    """Valid JSON, but not the structure this parser expects on this topic."""

    code = "unexpected_shape"


def unexpected(exc: BaseException) -> RejectedPayload:
    """The rejection for a bug-shaped surprise while parsing (the parser
    contract: nothing but ParseError leaves ``parse``)."""
    return UnexpectedShape(f"{type(exc).__name__}: {str(exc)[:200]}")
