"""The engine's fleet: owned broker connections and their machines, with
routes, subscriptions and each machine's session kept in line with the database.

Pure.  ``Engine`` (core.py) builds on it to process messages; this part
changes only when the configuration or a connection does.

The device clock (``_virtual_now``): a device's time advances from its last
reading by the *receive* time that passed while its broker connection was up,
so a skewed meter clock cannot cause a false timeout, and a broker outage is
not the meter's silence.
"""

import time
from collections.abc import Callable, Iterable

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
from .batch import Batch, ContinueSession, OpenSession
from .device import DeviceConfig, DeviceRuntime
from .history import GRID_S, MANUAL_START, PERSON_STOP, TICK, grid
from .types import Event, SessionOpened

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
    """The owned connections and their machines: routes, subscriptions, and
    the machines' session state kept in line with the database."""

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
        self._routers: dict[int, TopicRouter[int]] = {}
        self._client_id: dict[int, str] = {}  # connection id -> its MQTT client id
        self._discovery: dict[int, bool] = {}
        # connection id -> monotonic time of connect / since nobody listened
        self._up_since: dict[int, float] = {}
        self._down_since: dict[int, float] = {}
        # connection id -> mids committed, maybe not acked
        self._committed: dict[int, set[int]] = {}
        # request id -> (device id, monotonic)
        self._pending_polls: dict[int, tuple[int, float]] = {}
        # connection id -> (topic, payload, monotonic)
        self._last_msg: dict[int, tuple[str, bytes, float]] = {}
        self._company: dict[int, int | None] = {}  # for raw log rows
        self._unmatched_logged: dict[tuple[int, str], float] = {}
        # connection id -> prefixes proposed since the waiting ones were
        # counted in the database (discovery), and that count
        self._discovered_seen: dict[int, set[str]] = {}
        self._discovered_waiting: dict[int, int] = {}
        self._discovery_full: set[int] = set()  # said so in the log
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
        self._company[conn_id] = company_id
        self._routers[conn_id] = TopicRouter()
        for dev in self.devices.values():
            if dev.connection_id == conn_id:
                self._route(dev)
        self._client_id[conn_id] = client_id
        self.set_discovery(conn_id, discovery, discovered_waiting)
        self._committed[conn_id] = set(committed_mids or ())
        if unheard_s is not None:
            self._down_since[conn_id] = self.clock() - max(0.0, unheard_s)

    def set_discovery(self, conn_id: int, discovery: bool, waiting: int = 0) -> None:
        """Discovery on or off, and how many discovered machines wait for a
        manager now (the proposals made since are among them)."""
        self._discovery[conn_id] = bool(discovery)
        self._discovered_waiting[conn_id] = waiting
        self._discovered_seen.pop(conn_id, None)
        if waiting < MAX_DISCOVERED:
            self._discovery_full.discard(conn_id)

    def remove_connection(self, conn_id: int) -> None:
        for dev in [d for d in self.devices.values() if d.connection_id == conn_id]:
            self._forget_device(dev)
        for table in (
            self._routers,
            self._client_id,
            self._discovery,
            self._up_since,
            self._down_since,
            self._committed,
            self._last_msg,
            self._company,
            self._discovered_seen,
            self._discovered_waiting,
        ):
            table.pop(conn_id, None)

    def connection_up(self, conn_id: int, session_present: bool) -> None:
        now = self.clock()
        self._up_since[conn_id] = now
        down = self._down_since.pop(conn_id, None)
        if down is not None:
            # What the meters sent while nobody listened comes now, at once.
            for dev in self.devices.values():
                if dev.connection_id == conn_id:
                    dev.bucket.catch_up(now - down, now)
        if not session_present:
            # The broker forgot our session: nothing of the old one comes back.
            self._committed.get(conn_id, set()).clear()

    def connection_down(self, conn_id: int) -> None:
        self._up_since.pop(conn_id, None)
        self._down_since.setdefault(conn_id, self.clock())

    def committed_mids(self, conn_id: int) -> list[int]:
        return sorted(self._committed.get(conn_id, ()))

    def subscriptions(self, conn_id: int) -> list[str]:
        """The minimal filter set: overlapping filters would deliver copies."""
        filters = set()
        for dev in self.devices.values():
            if dev.connection_id == conn_id:
                filters.update(dev.filters)
        if self._discovery.get(conn_id):
            filters.add("+/events/rpc")
        return minimal_filters(filters)

    # -- devices ----------------------------------------------------------
    def upsert_device(self, cfg: DeviceConfig, batch: Batch) -> DeviceRuntime:
        """Add or update a device from its configuration; return its runtime."""
        dev = self.devices.get(cfg.id)
        if dev is None:
            parser = self._make_parser(cfg)
            dev = DeviceRuntime(cfg, parser, self.clock(), self.history)
            self.devices[cfg.id] = dev
            self._route(dev)
            self._sync_session(dev, cfg, batch)
            self._track(dev)
            return dev
        old = dev.cfg
        if (
            old.parser_key() != cfg.parser_key()
            or old.connection_id != cfg.connection_id
        ):
            self._unroute(dev)
            parser = self._make_parser(cfg)
            if old.parser_key()[:1] == cfg.parser_key()[:1]:
                parser.clock_offset = dev.parser.clock_offset
            dev.parser = parser
            dev.cfg = cfg
            self._route(dev)
        dev.reconfigure(cfg)
        self._sync_session(dev, cfg, batch)
        self._track(dev)
        return dev

    def remove_device(self, dev_id: int, batch: Batch) -> None:
        """A device left (archived, deleted, moved off an owned connection)."""
        dev = self.devices.get(dev_id)
        if dev is None:
            return
        if dev.state_machine.session is not None:
            # Close what we still hold open: a manager removed the machine.
            self._apply_events(
                dev, dev.state_machine.manual_stop(self._virtual_now(dev)), batch
            )
        self._forget_device(dev)

    def _forget_device(self, dev: DeviceRuntime) -> None:
        self._unroute(dev)
        self.devices.pop(dev.id, None)
        self.active.discard(dev.id)

    def _make_parser(self, cfg: DeviceConfig) -> Parser:
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

    def _route(self, dev: DeviceRuntime) -> None:
        router = self._routers.get(dev.connection_id)
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
            src = reply_src(dev.cfg.topic_prefix, self._client_id[dev.connection_id])
            if _valid_topic(src):
                dev.reply_src = src
                dev.filters.append(f"{src}/rpc")
        for topic_filter in dev.filters:
            router.add(topic_filter, dev.id)

    def _unroute(self, dev: DeviceRuntime) -> None:
        router = self._routers.get(dev.connection_id)
        if router is not None:
            for topic_filter in dev.filters:
                router.remove(topic_filter, dev.id)
        dev.filters = []

    def _sync_session(
        self, dev: DeviceRuntime, cfg: DeviceConfig, batch: Batch
    ) -> None:
        """The database is the truth about sessions (a user may have started or
        stopped one by hand): bring the machine in line with it."""
        db_id, db_start = cfg.running_session_id, cfg.running_start_ts
        machine = dev.state_machine
        if dev.session_id == db_id and (db_id is None) == (machine.session is None):
            return
        unwritten = _unwritten(batch, dev)
        if unwritten and db_id is None:
            return  # ours, opened in this batch: the database has not seen it yet
        now = grid(self._virtual_now(dev))
        if machine.now is not None and now <= machine.now:
            # A person's input comes after whatever the machine processed:
            # two of them never share an instant, so neither do their
            # sessions' starts (the database keeps one per start).
            now = grid(machine.now + GRID_S)
        if machine.session is not None:
            # Our session is gone from the database (closed by hand) or another
            # one is running there: the database wins.  One the database holds
            # ends without a write (the person's close is there); one opened in
            # this batch and not yet written ends here, closed by that person,
            # and is written closed: it did happen.
            closed = dev.take(PERSON_STOP, now)
            if unwritten:
                self._apply_events(dev, closed, batch)
            dev.session_id = None
        if db_id:
            start = grid(db_start) if db_start is not None else now
            # What was due before the person's start happens first, as the
            # watchdog would have had it (a session it closes is written).
            due = dev.take(TICK, start)
            if machine.session is not None:
                # Its start came due unseen (an outage, a late tick): the
                # person's session, already in the database, is that session.
                due = [e for e in due if not isinstance(e, SessionOpened)]
            self._apply_events(dev, due, batch)
            work = batch.sessions.get(dev.id)
            if work is not None and work.ops:
                # The tick wrote a session of its own (opened and closed
                # before the person's start): the ops after it are the person's.
                work.ops.append(ContinueSession(db_id))
            events = dev.take(MANUAL_START, start)
            dev.session_id = db_id
            # The session exists already: keep only the state changes.
            self._apply_events(
                dev, [e for e in events if not isinstance(e, SessionOpened)], batch
            )
            dev.progress_due = True
        self._mark(dev, batch)

    def _mark(self, dev: DeviceRuntime, batch: Batch) -> None:
        """The machine's live row goes into this flush."""
        batch.dirty.add(dev.id)

    def _track(self, dev: DeviceRuntime) -> None:
        """Keep ``active`` = devices whose machine can still change by itself."""
        if dev.state_machine.state == "idle":
            self.active.discard(dev.id)
        else:
            self.active.add(dev.id)

    def _apply_events(
        self, dev: DeviceRuntime, events: list[Event], batch: Batch
    ) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _virtual_now(self, dev: DeviceRuntime) -> float:
        """The device clock now: last reading + receive time passed since it
        while connected; never before the time the machine has processed (a
        tick or a person's input may have taken it past the last reading)."""
        machine = dev.state_machine
        last_ts = machine.last_ts
        if last_ts is None:
            now = self.wall() + (dev.parser.clock_offset or 0.0)
        else:
            now = last_ts
            up = self._up_since.get(dev.connection_id)
            if up is not None:
                now += max(0.0, self.clock() - max(dev.read_mono, up))
        processed = machine.now
        return now if processed is None or processed < now else processed


def _unwritten(batch: Batch, dev: DeviceRuntime) -> bool:
    """Whether the machine's open session was opened in this batch (so the
    database has no row of it yet)."""
    session = dev.state_machine.session
    work = batch.sessions.get(dev.id)
    if session is None or work is None:
        return False
    start = session.start_time
    return any(type(op) is OpenSession and op.start_ts == start for op in work.ops)


def _valid_topic(topic: str) -> bool:
    try:
        validate_topic(topic)
    except ValueError:
        return False
    return True
