"""The bridge's core: MQTT messages in, one batch of database changes out.

No Odoo here (the runner in iot_bridge_service.py owns threads, cursors and
locks): this is the logic that decides what a message means, so it is tested
without a server.  One instance per database, used by one worker thread.

Time: sessions run on the meter's clock.  The silence watchdog advances a
device's clock from its last reading by the *receive* time that passed while
its broker connection was up (``_virtual_now``): a skewed meter clock cannot
cause a false timeout, and a broker outage is not the meter's silence.
"""

import json
import logging
import time
from collections import Counter, defaultdict

from ..parsers import (
    Limits,
    NotAReading,
    RejectedPayload,
    TopicRouter,
    make_parser,
    poll_request,
    reply_route,
    subscriptions_for,
)
from ..parsers.topic_filter import minimal_filters
from .device_runtime import DeviceRuntime
from .session_detector import SessionClosed, SessionOpened

_logger = logging.getLogger(__name__)

TICK_GRACE_S = 1.0  # late frames still count before a deadline fires
POLL_TTL_S = 60.0
DUP_WINDOW_S = 0.05  # overlapping subscriptions deliver one copy each
UNMATCHED_LOG_EVERY_S = 60.0
REJECT_LOG_EVERY_S = 60.0
MAX_RAW_PROBLEM_ROWS = 100  # per batch: rejected/unmatched rows kept for operators


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
        self.raw_rows = [r for r in self.raw_rows if r[0] not in lost]
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


class BridgeCore:
    """Routes, parses and detects for every device of the owned connections."""

    def __init__(self, limits=None, clock=time.monotonic):
        self.limits = limits or Limits()
        self.clock = clock
        self.devices = {}  # id -> DeviceRuntime
        self._routers = {}  # connection id -> TopicRouter(filter -> device id)
        self._reply_topic = {}  # connection id -> "<client id>/rpc"
        self._reply_src = {}
        self._discovery = {}
        self._up_since = {}  # connection id -> monotonic time of connect
        self._down_since = {}  # connection id -> monotonic time nobody listened
        self._committed = {}  # connection id -> mids committed, maybe not acked
        self._pending_polls = {}  # request id -> (device id, monotonic)
        self._by_shelly_id = {}
        self._next_request = int(time.time()) % 1_000_000 * 1000
        self._last_msg = {}  # connection id -> (topic, payload, monotonic)
        self._unmatched_logged = {}
        self._discovered_seen = set()

    # -- connections ------------------------------------------------------
    def add_connection(
        self, conn_id, client_id, discovery, committed_mids=(), unheard_s=None
    ):
        """Own a connection; ``unheard_s``: how long nobody consumed it before
        (the backlog the broker kept meanwhile is not a flood)."""
        self._routers[conn_id] = TopicRouter()
        for dev in self.devices.values():
            if dev.connection_id == conn_id:
                self._route(dev)
        self._reply_src[conn_id] = client_id
        self._reply_topic[conn_id] = f"{client_id}/rpc"
        self._discovery[conn_id] = bool(discovery)
        self._committed[conn_id] = set(committed_mids or ())
        if unheard_s is not None:
            self._down_since[conn_id] = self.clock() - max(0.0, unheard_s)

    def set_discovery(self, conn_id, discovery):
        self._discovery[conn_id] = bool(discovery)

    def remove_connection(self, conn_id):
        for dev in [d for d in self.devices.values() if d.connection_id == conn_id]:
            self._forget_device(dev)
        for table in (
            self._routers,
            self._reply_src,
            self._reply_topic,
            self._discovery,
            self._up_since,
            self._down_since,
            self._committed,
            self._last_msg,
        ):
            table.pop(conn_id, None)

    def connection_up(self, conn_id, session_present):
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

    def connection_down(self, conn_id):
        self._up_since.pop(conn_id, None)
        self._down_since.setdefault(conn_id, self.clock())

    def committed_mids(self, conn_id):
        return sorted(self._committed.get(conn_id, ()))

    def subscriptions(self, conn_id):
        """The minimal filter set: overlapping filters would deliver copies."""
        filters = set()
        for dev in self.devices.values():
            if dev.connection_id == conn_id:
                filters.update(dev.filters)
        if conn_id in self._reply_topic:
            filters.add(self._reply_topic[conn_id])
        if self._discovery.get(conn_id):
            filters.add("+/events/rpc")
        return minimal_filters(filters)

    # -- devices ----------------------------------------------------------
    def upsert_device(self, cfg, batch):
        """Add or update a device from its configuration; return its runtime."""
        dev = self.devices.get(cfg.id)
        if dev is None:
            parser = self._make_parser(cfg)
            dev = DeviceRuntime(cfg, parser, self.clock())
            self.devices[cfg.id] = dev
            self._route(dev)
            self._sync_session(dev, cfg, batch)
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
        return dev

    def remove_device(self, dev_id, batch):
        """A device left (archived, deleted, moved off an owned connection)."""
        dev = self.devices.get(dev_id)
        if dev is None:
            return
        if dev.machine.session is not None:
            # Close what we still hold open: a manager removed the machine.
            self._apply_events(
                dev, dev.machine.manual_stop(self._virtual_now(dev)), batch
            )
        self._forget_device(dev)

    def _forget_device(self, dev):
        self._unroute(dev)
        self.devices.pop(dev.id, None)
        if dev.shelly_id and self._by_shelly_id.get(dev.shelly_id) == dev.id:
            del self._by_shelly_id[dev.shelly_id]

    def _make_parser(self, cfg):
        options = None
        if cfg.parser_type == "generic_json":
            options = {
                "power_path": cfg.json_power_path,
                "energy_path": cfg.json_energy_path,
            }
        parser = make_parser(
            cfg.parser_type,
            prefix=cfg.topic_prefix,
            topic_filter=cfg.topic_pattern,
            component=cfg.component if cfg.parser_type != "generic_json" else None,
            options=options,
            limits=self.limits,
        )
        if cfg.parser_snapshot and hasattr(parser, "restore"):
            parser.restore(cfg.parser_snapshot)
        return parser

    def _route(self, dev):
        router = self._routers.get(dev.connection_id)
        if router is None:
            return
        dev.filters = subscriptions_for(
            dev.cfg.parser_type,
            prefix=dev.cfg.topic_prefix,
            topic_filter=dev.cfg.topic_pattern,
        )
        for topic_filter in dev.filters:
            router.add(topic_filter, dev.id)
        if dev.shelly_id:
            self._by_shelly_id[dev.shelly_id] = dev.id

    def _unroute(self, dev):
        router = self._routers.get(dev.connection_id)
        if router is not None:
            for topic_filter in dev.filters:
                router.remove(topic_filter, dev.id)
        dev.filters = []

    def _sync_session(self, dev, cfg, batch):
        """The database is the truth about sessions (a user may have started or
        stopped one by hand): bring the machine in line with it."""
        db_id, db_start = cfg.running_session_id, cfg.running_start_ts
        machine = dev.machine
        if dev.session_id == db_id and (db_id is None) == (machine.session is None):
            return
        now = self._virtual_now(dev)
        if machine.session is not None:
            # Our session is gone from the database (closed by hand) or another
            # one is running there: the database wins, ours ends without a write.
            machine.manual_stop(now)
            dev.session_id = None
        if db_id:
            events = machine.manual_start(db_start if db_start is not None else now)
            dev.session_id = db_id
            # The session exists already: keep only the state changes.
            self._apply_events(
                dev, [e for e in events if not isinstance(e, SessionOpened)], batch
            )
            dev.progress_due = True
        batch.dirty.add(dev.id)
        dev.dirty = True

    # -- messages ---------------------------------------------------------
    def handle(self, conn_id, msg, batch):
        """Process one inbound message into ``batch`` (never raises on bad data)."""
        stats = batch.stats[conn_id]
        stats["received"] += 1
        batch.acks.append((conn_id, msg))
        if batch.started is None:
            batch.started = self.clock()
        committed = self._committed.get(conn_id)
        if committed is not None and msg.mid in committed:
            if msg.dup:
                stats["duplicates"] += 1
                batch.done_mids[conn_id].add(msg.mid)
                return
            committed.discard(msg.mid)  # the broker reused it: our ack arrived
        now = self.clock()
        last = self._last_msg.get(conn_id)
        if (
            last is not None
            and now - last[2] <= DUP_WINDOW_S
            and last[0] == msg.topic
            and last[1] == msg.payload
        ):
            stats["duplicates"] += 1
            return
        self._last_msg[conn_id] = (msg.topic, msg.payload, now)
        router = self._routers.get(conn_id)
        ids = router.match(msg.topic) if router is not None else []
        if not ids and msg.topic == self._reply_topic.get(conn_id):
            ids = self._route_reply(msg.payload)
        if not ids:
            self._unmatched(conn_id, msg, batch, now)
            return
        dev = self.devices.get(ids[0])
        if dev is not None:
            self._handle_device(dev, conn_id, msg, batch, now)

    def _route_reply(self, payload):
        route = reply_route(payload)
        if route is None:
            return []
        request_id, src = route
        pending = self._pending_polls.pop(request_id, None)
        if pending is not None and pending[0] in self.devices:
            return [pending[0]]
        dev_id = self._by_shelly_id.get(src)
        return [dev_id] if dev_id in self.devices else []

    def _handle_device(self, dev, conn_id, msg, batch, now):
        stats = batch.stats[conn_id]
        if not dev.bucket.allow(now):
            stats["rate_limited"] += 1
            if not dev.rate_limited:
                dev.rate_limited = True
                dev.dirty = True
                batch.dirty.add(dev.id)
                _logger.warning(
                    "Device %s sends more than %s messages/s: dropping the excess",
                    dev.name,
                    dev.cfg.max_msg_rate,
                )
            return
        try:
            reading = dev.parser.parse(msg.topic, msg.payload, msg.received_at)
        except NotAReading as exc:
            # "stale": an older frame than one already merged (redelivery).
            stats["stale" if exc.code == "stale" else "ignored"] += 1
            if dev.cfg.log_raw:
                self._raw(batch, conn_id, dev, msg, "not_reading", exc.code, None, None)
            return
        except RejectedPayload as exc:
            stats["rejected"] += 1
            self._rejected(dev, conn_id, msg, exc, batch, now)
            return
        dev.last_recv_mono = now
        dev.last_msg_wall = msg.received_at
        if dev.rate_limited and dev.bucket.calm(now):
            dev.rate_limited = False
        status = self._apply_reading(dev, reading, batch)
        # One counter per message: a copy of an applied reading is not another.
        stats["stale" if status == "duplicate" else "readings"] += 1
        if dev.cfg.log_raw:
            self._raw(
                batch, conn_id, dev, msg, status, None, reading.ts, reading.power_w
            )
        dev.dirty = True
        batch.dirty.add(dev.id)

    def _apply_reading(self, dev, reading, batch):
        if reading.device_key and reading.device_key != dev.shelly_id:
            if dev.shelly_id and self._by_shelly_id.get(dev.shelly_id) == dev.id:
                del self._by_shelly_id[dev.shelly_id]
            dev.shelly_id = reading.device_key
            self._by_shelly_id[dev.shelly_id] = dev.id
        machine = dev.machine
        if reading.online is not None:
            dev.online = reading.online
            if not reading.online:
                self._apply_events(dev, machine.offline(reading.ts), batch)
            return "reading"
        dev.online = True
        if reading.meter_errors:
            dev.meter_error = ", ".join(reading.meter_errors)
            return "reading"
        dev.meter_error = False
        if reading.energy_wh is not None:
            dev.energy_wh = reading.energy_wh
        last_ts = machine.last_ts
        if last_ts is not None and reading.ts <= last_ts:
            return "duplicate"  # stale or redelivered: changes nothing
        dev.power_w = reading.power_w
        dev.voltage_v = reading.voltage_v
        dev.current_a = reading.current_a
        events = machine.feed(reading.ts, reading.power_w, reading.energy_wh)
        self._apply_events(dev, events, batch)
        return "reading"

    def _apply_events(self, dev, events, batch):
        for event in events:
            if isinstance(event, SessionOpened):
                batch.session_ops[dev.id].append(
                    ("open", {"start_ts": event.start_time, "manual": event.manual})
                )
                dev.progress_due = True
            elif isinstance(event, SessionClosed):
                batch.session_ops[dev.id].append(("close", event.summary))
                dev.progress_due = False
            else:
                dev.state_changed = True
        if events:
            dev.dirty = True
            batch.dirty.add(dev.id)

    def _rejected(self, dev, conn_id, msg, exc, batch, now):
        key = (dev.id, exc.code)
        if now - dev.reject_logged.get(key, -1e9) >= REJECT_LOG_EVERY_S:
            suppressed = dev.reject_counts.pop(key, 0)
            dev.reject_logged[key] = now
            _logger.warning(
                "Device %s: rejected a frame on %s (%s: %s)%s",
                dev.name,
                msg.topic[:200],
                exc.code,
                str(exc.detail)[:200],
                f"; {suppressed} more since the last report" if suppressed else "",
            )
            self._raw(
                batch, conn_id, dev, msg, "rejected", exc, None, None, problem=True
            )
        else:
            dev.reject_counts[key] = dev.reject_counts.get(key, 0) + 1
            if dev.cfg.log_raw:
                self._raw(batch, conn_id, dev, msg, "rejected", exc, None, None)

    def _unmatched(self, conn_id, msg, batch, now):
        batch.stats[conn_id]["unmatched"] += 1
        if self._discovery.get(conn_id) and msg.topic.endswith("/events/rpc"):
            self._discover(conn_id, msg, batch)
        key = (conn_id, msg.topic)
        if now - self._unmatched_logged.get(key, -1e9) >= UNMATCHED_LOG_EVERY_S:
            if len(self._unmatched_logged) > 10_000:
                self._unmatched_logged.clear()
            self._unmatched_logged[key] = now
            self._raw(
                batch, conn_id, None, msg, "unmatched", None, None, None, problem=True
            )

    def _discover(self, conn_id, msg, batch):
        prefix = msg.topic[: -len("/events/rpc")]
        key = (conn_id, prefix)
        if key in self._discovered_seen or not prefix:
            return
        route = _peek_src(msg.payload)
        if route is None:
            return
        src, component = route
        self._discovered_seen.add(key)
        batch.discovered[key] = {"src": src, "component": component}

    # -- raw log ----------------------------------------------------------
    def _raw(self, batch, conn_id, dev, msg, status, detail, ts, power, problem=False):
        if problem:
            if batch.problem_rows >= MAX_RAW_PROBLEM_ROWS:
                return
            batch.problem_rows += 1
        if detail is not None and not isinstance(detail, str):
            detail = f"{detail.code}: {detail.detail}"[:250]
        batch.raw_rows.append(
            (conn_id, dev.id if dev else None, msg, status, detail, ts, power)
        )

    # -- watchdog, polls, flush support ----------------------------------
    def _virtual_now(self, dev):
        """The device clock now: last reading + receive time passed while connected."""
        last_ts = dev.machine.last_ts
        up = self._up_since.get(dev.connection_id)
        mono = self.clock()
        if last_ts is None:
            return time.time() + (dev.parser.clock_offset or 0.0)
        if up is None:
            return last_ts
        return last_ts + max(0.0, mono - max(dev.last_recv_mono, up))

    def tick(self, batch):
        """Fire due debounces and silence timeouts (only while connected)."""
        for dev in self.devices.values():
            deadline = dev.machine.next_deadline()
            if deadline is None or dev.connection_id not in self._up_since:
                continue
            now = self._virtual_now(dev)
            if now >= deadline + TICK_GRACE_S:
                self._apply_events(dev, dev.machine.tick(now), batch)

    def due_polls(self):
        """[(connection id, topic, payload)] of status polls to publish now."""
        now = self.clock()
        out = []
        for dev in self.devices.values():
            interval = dev.cfg.poll_interval_s
            if (
                not interval
                or dev.cfg.parser_type != "shelly_gen2"
                or dev.connection_id not in self._up_since
                or now - max(dev.last_recv_mono, dev.last_poll_mono) < interval
            ):
                continue
            self._next_request += 1
            request_id = self._next_request
            src = self._reply_src[dev.connection_id]
            try:
                suffix, payload = poll_request(dev.cfg.component, request_id, src)
            except ValueError:
                continue  # e.g. em1:N has no GetStatus poll
            dev.last_poll_mono = now
            self._pending_polls[request_id] = (dev.id, now)
            out.append((dev.connection_id, f"{dev.cfg.topic_prefix}/{suffix}", payload))
        if len(self._pending_polls) > 4 * max(1, len(self.devices)):
            cutoff = now - POLL_TTL_S
            self._pending_polls = {
                k: v for k, v in self._pending_polls.items() if v[1] >= cutoff
            }
        return out

    def progress_ops(self, batch):
        """Running sessions whose durations the database should see now."""
        now = self.clock()
        for dev in self.devices.values():
            if dev.session_id is None and not batch.session_ops.get(dev.id):
                continue
            summary = dev.machine.session
            if summary is None:
                continue
            if dev.progress_due or dev.state_changed or now - dev.progress_mono >= 10.0:
                batch.session_ops[dev.id].append(("progress", summary))
                dev.progress_mono = now
                dev.progress_due = False

    def committed(self, batch, session_ids):
        """After the commit: adopt new session ids, remember unacked mids."""
        for dev_id, session_id in session_ids.items():
            dev = self.devices.get(dev_id)
            if dev is not None:
                dev.session_id = session_id
        for dev_id in batch.dirty:
            dev = self.devices.get(dev_id)
            if dev is not None:
                dev.dirty = dev.state_changed = False
        for conn_id, mids in batch.done_mids.items():
            self._committed.get(conn_id, set()).difference_update(mids)

    def remember_unacked(self, conn_id, mids):
        self._committed.setdefault(conn_id, set()).update(mids)

    def forget_acked(self, conn_id, mids):
        self._committed.setdefault(conn_id, set()).difference_update(mids)


def _peek_src(payload):
    """(device id, metering component) of a Shelly frame, for discovery."""
    try:
        frame = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if type(frame) is not dict:
        return None
    src = frame.get("src")
    params = frame.get("params")
    if type(src) is not str or not src.startswith("shelly") or type(params) is not dict:
        return None
    for key in params:
        if key.startswith(("pm1:", "switch:", "light:")):
            return src[:64], key
    return src[:64], "pm1:0"
