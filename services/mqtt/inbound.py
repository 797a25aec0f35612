"""One PUBLISH as the transport hands it on (the engine reads these fields)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One PUBLISH as received; ``generation`` identifies the network session
    (an acknowledgement is only sent on the session that delivered it)."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    dup: bool
    retain: bool
    received_at: float
    generation: int
    # When it arrived on the monotonic clock (None: not from a network
    # thread): a batch's flush interval counts from its oldest message's
    # arrival, not from when the runner took it off the queue.
    received_mono: float | None = None
