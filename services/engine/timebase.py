"""Device time (Unix seconds, float) and the naive UTC datetimes Odoo stores.

The one conversion used everywhere: the engine's session values, the writer,
the models and the tools.  Pure (standard library only).
"""

from datetime import datetime, timezone

UTC = timezone.utc


def to_utc(ts: float) -> datetime:
    """Device time -> naive UTC datetime, the way Odoo stores a Datetime field."""
    return datetime.fromtimestamp(ts, tz=UTC).replace(tzinfo=None)


def from_utc(value: datetime) -> float:
    """A naive UTC datetime (an Odoo Datetime value) -> Unix seconds."""
    return value.replace(tzinfo=UTC).timestamp()
