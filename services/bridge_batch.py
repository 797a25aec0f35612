"""One flush's worth of work: what to write in one transaction, what to ack after."""

from collections import Counter, defaultdict
from typing import NamedTuple


class RawRow(NamedTuple):
    """One row for the raw message log (``mqtt.message``)."""

    connection_id: int
    device_id: int | None
    company_id: int | None
    msg: object  # the InboundMessage
    status: str
    detail: str | None
    device_ts: float | None
    power_w: float | None


class Batch:
    """Everything one flush writes in one transaction, and the acks after it."""

    def __init__(self):
        self.acks = []  # (connection_id, InboundMessage) in arrival order
        self.raw_rows = []
        self.session_ops = defaultdict(list)  # device_id -> [(op, payload)]
        self.dirty = set()  # device ids whose live fields changed
        self.stats = defaultdict(Counter)  # connection_id -> counters
        self.discovered = {}  # (connection_id, prefix) -> values
        self.done_mids = defaultdict(set)  # committed mids seen again (dup)
        self.started = None
        self.problem_rows = 0

    def __len__(self):
        return len(self.acks)

    def drop_connections(self, connection_ids, devices):
        """Forget what belongs to connections we no longer own (their messages
        stay unacknowledged, so the new owner gets them)."""
        lost = set(connection_ids)
        self.acks = [(c, m) for c, m in self.acks if c not in lost]
        self.raw_rows = [r for r in self.raw_rows if r.connection_id not in lost]
        for dev_id in list(self.session_ops):
            if dev_id not in devices:
                del self.session_ops[dev_id]
        self.dirty = {d for d in self.dirty if d in devices}
        for conn_id in lost:
            self.stats.pop(conn_id, None)
            self.done_mids.pop(conn_id, None)
        self.discovered = {k: v for k, v in self.discovered.items() if k[0] not in lost}

    @property
    def empty(self):
        return not (self.acks or self.dirty or self.session_ops or self.discovered)
