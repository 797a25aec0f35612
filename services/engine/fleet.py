"""The engine's fleet: owned broker connections and their machines, with
routes, subscriptions and each machine's session kept in line with the database.

Pure.  ``Engine`` (core.py) builds on it to process messages; this part
changes only when the configuration or a connection does.

The device clock (``virtual_now``): a device's time advances from its last
reading by the *receive* time that passed while its broker connection was up,
so a skewed meter clock cannot cause a false timeout, and a broker outage is
not the meter's silence.
"""

import time
from collections.abc import Callable, Iterable
from functools import lru_cache

from ...parsers import (
    Limits,
    Parser,
    TopicRouter,
    make_parser,
    meter_kind,
    reply_src,
    subscriptions_for,
    validate_topic,
)
from ...parsers.topic_filter import minimal_filters
from .device import DeviceConfig, DeviceRuntime

# Live traffic has a real receive clock: a meter clock more than a few
# minutes ahead of it is not believed (one frame dated hours ahead would make
# the meter's real frames stale for hours), nor one further behind than a
# broker may keep readings for us (MAX_SESSION_EXPIRY_S, the connection's
# session expiry cap).  Such a frame is read at its receive time, counted.
MAX_SESSION_EXPIRY_S = 30 * 86400
# Discovery creates records: a hostile publisher must not create thousands;
# at most this many proposals of a connection wait for a manager.
MAX_DISCOVERED = 100
MAX_CLOCK_AHEAD_S = 300.0
LIVE_LIMITS = Limits(
    max_clock_ahead_s=MAX_CLOCK_AHEAD_S,
    max_clock_behind_s=MAX_SESSION_EXPIRY_S + 86400.0,
)


class Fleet:
    """The owned connections and their machines: routes, subscriptions, the
    device clock.  The engine (engine.py) keeps one; what a message or the
    database means for a machine is the engine's."""

    def __init__(
        self,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
        history: bool = True,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits or LIVE_LIMITS
        self.clock = clock  # monotonic: what passed
        self.wall = wall  # the receive clock: a meter's time before it spoke
        self.history = history  # keep every machine's power history
        self.devices: dict[int, DeviceRuntime] = {}
        # connection id -> TopicRouter(filter -> device id)
        self.routers: dict[int, TopicRouter[int]] = {}
        self.client_id: dict[int, str] = {}  # connection id -> its MQTT client id
        self.discovery: dict[int, bool] = {}
        # connection id -> monotonic time of connect / since nobody listened
        self.up_since: dict[int, float] = {}
        self.down_since: dict[int, float] = {}
        # connection id -> mids committed, maybe not acked
        self.committed: dict[int, set[int]] = {}
        # connection id -> (topic, payload, monotonic)
        self.last_msg: dict[int, tuple[str, bytes, float]] = {}
        self.company: dict[int, int | None] = {}  # for raw log rows
        self.unmatched_logged: dict[tuple[int, str], float] = {}
        # connection id -> prefixes proposed since the waiting ones were
        # counted in the database (discovery), and that count
        self.discovered_seen: dict[int, set[str]] = {}
        self.discovered_waiting: dict[int, int] = {}
        self.discovery_full: set[int] = set()  # said so in the log
        # machines whose state machine is not idle (deadlines, sessions)
        self.active: set[int] = set()

    # -- connections ------------------------------------------------------
    def add_connection(
        self,
        conn_id: int,
        client_id: str,
        discovery: bool,
        committed_mids: Iterable[int] = (),
        unheard_s: float | None = None,
        company_id: int | None = None,
        discovered_waiting: int = 0,
    ) -> None:
        """Own a connection; ``unheard_s``: how long nobody consumed it before
        (the backlog the broker kept meanwhile is not a flood);
        ``discovered_waiting``: its discovered machines that wait for a
        manager."""
        self.company[conn_id] = company_id
        self.routers[conn_id] = TopicRouter()
        for dev in self.devices.values():
            if dev.connection_id == conn_id:
                self.route(dev)
        self.client_id[conn_id] = client_id
        self.set_discovery(conn_id, discovery, discovered_waiting)
        self.committed[conn_id] = set(committed_mids or ())
        if unheard_s is not None:
            self.down_since[conn_id] = self.clock() - max(0.0, unheard_s)

    def set_discovery(self, conn_id: int, discovery: bool, waiting: int = 0) -> None:
        """Discovery on or off, and how many discovered machines wait for a
        manager now (the proposals made since are among them)."""
        self.discovery[conn_id] = bool(discovery)
        self.discovered_waiting[conn_id] = waiting
        self.discovered_seen.pop(conn_id, None)
        if waiting < MAX_DISCOVERED:
            self.discovery_full.discard(conn_id)

    def remove_connection(self, conn_id: int) -> None:
        for dev in [d for d in self.devices.values() if d.connection_id == conn_id]:
            self.forget(dev)
        for table in (
            self.routers,
            self.client_id,
            self.discovery,
            self.up_since,
            self.down_since,
            self.committed,
            self.last_msg,
            self.company,
            self.discovered_seen,
            self.discovered_waiting,
        ):
            table.pop(conn_id, None)

    def connection_up(self, conn_id: int, session_present: bool) -> None:
        now = self.clock()
        self.up_since[conn_id] = now
        down = self.down_since.pop(conn_id, None)
        if down is not None:
            # What the meters sent while nobody listened comes now, at once.
            for dev in self.devices.values():
                if dev.connection_id == conn_id:
                    dev.bucket.catch_up(now - down, now)
        if not session_present:
            # The broker forgot our session: nothing of the old one comes back.
            self.committed.get(conn_id, set()).clear()

    def connection_down(self, conn_id: int) -> None:
        self.up_since.pop(conn_id, None)
        self.down_since.setdefault(conn_id, self.clock())

    def committed_mids(self, conn_id: int) -> list[int]:
        return sorted(self.committed.get(conn_id, ()))

    def subscriptions(self, conn_id: int) -> list[str]:
        """The minimal filter set: overlapping filters would deliver copies."""
        filters = set()
        for dev in self.devices.values():
            if dev.connection_id == conn_id:
                filters.update(dev.filters)
        if self.discovery.get(conn_id):
            filters.add("+/events/rpc")
        return list(_minimal(frozenset(filters)))

    # -- devices ----------------------------------------------------------
    def configure(self, cfg: DeviceConfig) -> DeviceRuntime:
        """Add a device from its configuration, or bring one in line with a
        changed one (a new parser and routes when its meter changed)."""
        dev = self.devices.get(cfg.id)
        if dev is None:
            dev = DeviceRuntime(cfg, self.parser_for(cfg), self.clock(), self.history)
            self.devices[cfg.id] = dev
            self.route(dev)
            return dev
        old = dev.cfg
        if not old.same_meter(cfg):
            self.unroute(dev)
            parser = self.parser_for(cfg)
            if old.parser_type == cfg.parser_type:
                parser.clock_offset = dev.parser.clock_offset
            dev.parser = parser
            dev.cfg = cfg
            self.route(dev)
        dev.reconfigure(cfg)
        return dev

    def forget(self, dev: DeviceRuntime) -> None:
        self.unroute(dev)
        self.devices.pop(dev.id, None)
        self.active.discard(dev.id)

    def parser_for(self, cfg: DeviceConfig) -> Parser:
        kind = meter_kind(cfg.parser_type)
        parser = make_parser(
            cfg.parser_type,
            prefix=cfg.topic_prefix,
            topic_filter=cfg.topic_pattern,
            component=cfg.component if kind.default_component else None,
            options={opt: cfg.options.get(field) for opt, field in kind.option_fields},
            limits=self.limits,
        )
        if cfg.parser_snapshot:
            parser.restore(cfg.parser_snapshot)
        return parser

    def route(self, dev: DeviceRuntime) -> None:
        router = self.routers.get(dev.connection_id)
        if router is None:
            return
        dev.filters = subscriptions_for(
            dev.cfg.parser_type,
            prefix=dev.cfg.topic_prefix,
            topic_filter=dev.cfg.topic_pattern,
        )
        dev.reply_src = None
        if meter_kind(dev.cfg.parser_type).pollable and dev.cfg.topic_prefix:
            # Its answers to our polls come on a topic of its own (none when
            # the client id cannot be part of a topic: then it is not polled).
            src = reply_src(dev.cfg.topic_prefix, self.client_id[dev.connection_id])
            if _valid_topic(src):
                dev.reply_src = src
                dev.filters.append(f"{src}/rpc")
        for topic_filter in dev.filters:
            router.add(topic_filter, dev.id)

    def unroute(self, dev: DeviceRuntime) -> None:
        router = self.routers.get(dev.connection_id)
        if router is not None:
            for topic_filter in dev.filters:
                router.remove(topic_filter, dev.id)
        dev.filters = []

    def track(self, dev: DeviceRuntime) -> None:
        """Keep ``active`` = devices whose machine can still change by itself."""
        if dev.state_machine.state == "idle":
            self.active.discard(dev.id)
        else:
            self.active.add(dev.id)

    def virtual_now(self, dev: DeviceRuntime) -> float:
        """The device clock now: last reading + receive time passed since it
        while connected; never before the time the machine has processed (a
        tick or a person's input may have taken it past the last reading)."""
        machine = dev.state_machine
        last_ts = machine.last_ts
        if last_ts is None:
            now = self.wall() + (dev.parser.clock_offset or 0.0)
        else:
            now = last_ts
            up = self.up_since.get(dev.connection_id)
            if up is not None:
                now += max(0.0, self.clock() - max(dev.read_mono, up))
        processed = machine.now
        return now if processed is None or processed < now else processed


@lru_cache(maxsize=16)
def _minimal(filters: frozenset[str]) -> tuple[str, ...]:
    """``minimal_filters``, once per distinct set: asked at every reconcile
    (18 ms with 1,000 machines' 3,000 filters), the set seldom changes."""
    return tuple(minimal_filters(filters))


def _valid_topic(topic: str) -> bool:
    try:
        validate_topic(topic)
    except ValueError:
        return False
    return True
