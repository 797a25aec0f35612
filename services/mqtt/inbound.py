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
