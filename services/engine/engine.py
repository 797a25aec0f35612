"""The engine: MQTT messages in, one sealed batch of database changes out.

Pure (the database runner, ``services/runner/database_runner.py``, owns threads,
cursors and locks): this is the logic that decides what a message means, so
it is tested without a server.  One instance per database, used by one
thread.  It keeps a fleet (fleet.py: connections, machines, routes, the
device clock) and aligns machines with the database's sessions
(alignment.py); the batch it fills is the contract with the writer
(batch.py).

No frame can stall it: each is handled under its own guard; an unexpected
exception is logged with its traceback (once per machine and kind), the
frame is logged as an ``error`` raw row and acknowledged, and its machine is
flagged (``fault``).
"""

import json
import logging
import secrets
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from typing import cast

from ...parsers import (
    DISCOVERING,
    TS_DEVICE,
    TS_NOT_BELIEVED,
    Limits,
    NotAReading,
    Reading,
    RejectedPayload,
    discovered_component,
    poll_request,
    reply_route,
)
from .alignment import align
from .batch import (
    Batch,
    CloseSession,
    Message,
    OpenSession,
    RawRow,
    UpdateSession,
    WriteResult,
)
from .device import DeviceConfig, DeviceRuntime, LastRead
from .fleet import MAX_DISCOVERED, Fleet
from .history import GRID_S, OFFLINE, ONLINE, READ, TICK, grid
from .types import Event, SessionClosed, SessionOpened

_logger = logging.getLogger(__name__)

TICK_GRACE_S = 1.0  # late frames still count before a deadline fires
POLL_TTL_S = 60.0
DUP_WINDOW_S = 0.05  # overlapping subscriptions deliver one copy each
SAME_INSTANT = 8  # frames of one device instant remembered as applied
UNMATCHED_LOG_EVERY_S = 60.0
REJECT_LOG_EVERY_S = 60.0
MAX_RAW_PROBLEM_ROWS = 100  # per batch: rejected/unmatched rows kept for operators
# A running session's durations are written when it opens, then every 30 s
# (a state change is not worth a session write: the board shows the state
# live, from the machine's row) and with its close.
PROGRESS_EVERY_S = 30.0
NOTIFY_EVERY_S = 1.0


class Engine:
    """Routes, parses and detects for every machine of the owned connections."""

    def __init__(
        self,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
        history: bool = True,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.fleet = Fleet(limits, clock, history, wall)
        self.limits = self.fleet.limits
        self.clock = clock
        self.devices = self.fleet.devices  # the fleet's, by id
        self.active = self.fleet.active  # machines that can change by themselves
        # request id -> (device id, monotonic) of the polls sent
        self._pending_polls: dict[int, tuple[int, float]] = {}
        self._to_notify: set[int] = set()
        self._notified_at = -1e9
        self._fault_logged: set[tuple[int | None, str]] = set()  # (machine, type)

    # -- connections and machines (the fleet's, kept in line) ---------------
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
        """Own a connection (``Fleet.add_connection``)."""
        self.fleet.add_connection(
            conn_id,
            client_id,
            discovery,
            committed_mids,
            unheard_s,
            company_id,
            discovered_waiting,
        )

    def remove_connection(self, conn_id: int) -> None:
        self.fleet.remove_connection(conn_id)

    def set_discovery(self, conn_id: int, discovery: bool, waiting: int = 0) -> None:
        self.fleet.set_discovery(conn_id, discovery, waiting)

    def connection_up(self, conn_id: int, session_present: bool) -> None:
        self.fleet.connection_up(conn_id, session_present)

    def connection_down(self, conn_id: int) -> None:
        self.fleet.connection_down(conn_id)

    def committed_mids(self, conn_id: int) -> list[int]:
        return self.fleet.committed_mids(conn_id)

    def subscriptions(self, conn_id: int) -> list[str]:
        return self.fleet.subscriptions(conn_id)

    def upsert_device(self, cfg: DeviceConfig, batch: Batch) -> DeviceRuntime:
        """Add or update a machine from its configuration and bring its
        session in line with the database's (alignment.py)."""
        dev = self.fleet.configure(cfg)
        now = self.fleet.virtual_now(dev)
        if align(dev, cfg, batch, now, self._apply_events):
            self._mark(dev, batch)
        self.fleet.track(dev)
        return dev

    def needs_state(self, cfg: DeviceConfig) -> bool:
        """Whether ``upsert_device(cfg)`` reads the machine's stored state
        (snapshots, history tail): only for a machine new to the engine or
        given another meter, the ones it builds anew (``Fleet.configure``)."""
        dev = self.devices.get(cfg.id)
        return dev is None or not dev.cfg.same_meter(cfg)

    def remove_device(self, dev_id: int, batch: Batch) -> None:
        """A machine left (archived, deleted, moved off an owned connection)."""
        dev = self.devices.get(dev_id)
        if dev is None:
            return
        if dev.state_machine.session is not None:
            # Close what we still hold open: a manager removed the machine.
            now = self.fleet.virtual_now(dev)
            self._apply_events(dev, dev.state_machine.manual_stop(now), batch)
        self.fleet.forget(dev)

    def _mark(self, dev: DeviceRuntime, batch: Batch) -> None:
        """The machine's live row goes into this flush."""
        batch.dirty.add(dev.id)

    # -- messages ---------------------------------------------------------
    def handle(self, conn_id: int, msg: Message, batch: Batch) -> None:
        """Process one inbound message into ``batch``; never raises."""
        stats = batch.stats[conn_id]
        stats["received"] += 1
        if batch.started is None:
            # From the message's arrival, not from when the runner got to it:
            # one that queued while the last batch was written waits no
            # longer for that (its age counts, on the monotonic clock).
            age = self.fleet.wall() - msg.received_at
            batch.started = self.clock() - (age if age > 0.0 else 0.0)
        dev_id = None
        try:
            dev_id = self._process(conn_id, msg, batch, stats)
        except Exception as exc:  # a bug met by this frame: the rest goes on
            dev_id = self._frame_failed(conn_id, msg, batch, exc)
        finally:
            # Acknowledged with the batch whatever happened: handling it again
            # would do the same.
            batch.acks.append((conn_id, msg, dev_id))

    def _process(
        self, conn_id: int, msg: Message, batch: Batch, stats: Counter
    ) -> int | None:
        """What the message means; returns the machine it was routed to."""
        committed = self.fleet.committed.get(conn_id)
        if committed is not None and msg.mid in committed:
            if msg.dup:
                stats["duplicates"] += 1
                batch.done_mids[conn_id].add(msg.mid)
                return None
            committed.discard(msg.mid)  # the broker reused it: our ack arrived
        now = self.clock()
        last = self.fleet.last_msg.get(conn_id)
        if (
            last is not None
            and now - last[2] <= DUP_WINDOW_S
            and last[0] == msg.topic
            and last[1] == msg.payload
        ):
            stats["duplicates"] += 1
            return None
        self.fleet.last_msg[conn_id] = (msg.topic, msg.payload, now)
        router = self.fleet.routers.get(conn_id)
        ids = router.match(msg.topic) if router is not None else []
        if not ids:
            self._unmatched(conn_id, msg, batch, now)
            return None
        dev = self.devices.get(ids[0])
        if dev is None:
            return None
        self._handle_device(dev, conn_id, msg, batch, now)
        return dev.id

    def _frame_failed(
        self, conn_id: int, msg: Message, batch: Batch, exc: Exception
    ) -> int | None:
        """A frame met an unexpected exception: log it (its traceback once per
        machine and exception type), keep it as an ``error`` raw row, flag
        the machine; returns the machine's id (None: no machine)."""
        batch.stats[conn_id]["errors"] += 1
        dev = self._route_quietly(conn_id, msg.topic)
        reason = one_line(exc)
        key = (dev.id if dev else None, type(exc).__name__)
        if key in self._fault_logged:
            _logger.warning("Frame on %s failed again: %s", msg.topic[:200], reason)
        else:
            self._fault_logged.add(key)
            _logger.error(
                "Frame on %s could not be processed (%s); logged as an error and "
                "acknowledged, the other frames go on:\n%s",
                msg.topic[:200],
                reason,
                "".join(traceback.format_exception(exc)).rstrip(),
            )
        if dev is not None:
            dev.fault = reason
            self._mark(dev, batch)
        self._raw(batch, conn_id, dev, msg, "error", reason, None, None, problem=True)
        return dev.id if dev is not None else None

    def _route_quietly(self, conn_id: int, topic: str) -> DeviceRuntime | None:
        """The machine a topic belongs to, or None (never raises)."""
        try:
            router = self.fleet.routers.get(conn_id)
            ids = router.match(topic) if router is not None else []
            return self.devices.get(ids[0]) if ids else None
        except Exception:  # pylint: disable=broad-except
            return None

    def _unsolicited(self, dev: DeviceRuntime, msg: Message) -> bool:
        """Whether ``msg`` is a reply on the machine's reply topic that
        answers no request we sent it (taken off the pending ones if it does)."""
        if dev.reply_src is None or msg.topic != dev.reply_src + "/rpc":
            return False
        route = reply_route(msg.payload)
        if route is None:
            return False  # not a reply: the parser says what it is
        pending = self._pending_polls.get(route[0])
        if pending is None or pending[0] != dev.id:
            return True
        del self._pending_polls[route[0]]
        return False

    def _handle_device(
        self,
        dev: DeviceRuntime,
        conn_id: int,
        msg: Message,
        batch: Batch,
        now: float,
    ) -> None:
        stats = batch.stats[conn_id]
        if not dev.bucket.allow(now):
            stats["rate_limited"] += 1
            if not dev.rate_limited:
                dev.rate_limited = True
                self._mark(dev, batch)
                _logger.warning(
                    "Device %s sends more than %s messages/s: dropping the excess",
                    dev.name,
                    dev.cfg.max_msg_rate,
                )
            return
        if self._unsolicited(dev, msg):
            stats["rejected"] += 1
            exc = RejectedPayload("no request of ours has this id", "unsolicited_reply")
            self._rejected(dev, conn_id, msg, exc, batch, now)
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
        if reading.ts_source == TS_NOT_BELIEVED:
            stats["clock_refused"] += 1
            self._clock_refused(dev, now)
        if dev.rate_limited and dev.bucket.calm(now):
            dev.rate_limited = False
        status = self._apply_reading(dev, reading, batch)
        # One counter per message: a copy of an applied reading is not another.
        stats["stale" if status == "duplicate" else "readings"] += 1
        if dev.cfg.log_raw:
            self._raw(
                batch, conn_id, dev, msg, status, None, reading.ts, reading.power_w
            )
        self._mark(dev, batch)

    def _apply_reading(self, dev: DeviceRuntime, reading: Reading, batch: Batch) -> str:
        if reading.device_key:
            dev.shelly_id = reading.device_key
        machine = dev.state_machine
        ts = grid(reading.ts)
        if reading.online is not None:
            dev.online = reading.online
            kind = ONLINE if reading.online else OFFLINE
            processed = machine.now
            if processed is not None and ts <= processed:
                # A late notice takes effect just after what the machine
                # processed: a session opened at that instant (a person's)
                # never ends in it, so no two sessions share a start.
                ts = grid(processed + GRID_S)
            self._apply_events(dev, dev.take(kind, ts), batch)
            return "reading"
        dev.online = True
        if reading.meter_errors:
            dev.meter_error = ", ".join(reading.meter_errors)
            return "reading"
        dev.meter_error = None
        if reading.energy_wh is not None:
            dev.energy_wh = reading.energy_wh
        power = None if reading.power_w is None else grid(reading.power_w)
        energy = None if reading.energy_wh is None else grid(reading.energy_wh)
        last_ts = machine.last_ts
        if last_ts is not None and ts <= last_ts:
            if not _newer(dev.last_read, reading, ts, last_ts, power, energy):
                return "duplicate"  # stale or redelivered: changes nothing
            ts = grid(last_ts + GRID_S)
        if power is None:
            return "reading"  # a counter alone (kept above): nothing to feed
        events = dev.take(READ, ts, power, energy)
        if machine.last_ts == ts:
            dev.read_mono = dev.last_recv_mono
            last_read = dev.last_read
            if last_read is None or last_read[0] != reading.ts:
                dev.last_read = (reading.ts, power, energy)
            elif len(last_read) < 1 + 2 * SAME_INSTANT:  # a clock standing still
                dev.last_read = (*last_read, power, energy)  # another frame then
        self._apply_events(dev, events, batch)
        return "reading"

    def _apply_events(
        self, dev: DeviceRuntime, events: list[Event], batch: Batch
    ) -> None:
        for event in events:
            if isinstance(event, SessionOpened):
                batch.session_work(dev.id, dev.name, dev.session_id).ops.append(
                    OpenSession(event.start_time, event.manual)
                )
                dev.progress_due = True
            elif isinstance(event, SessionClosed):
                batch.session_work(dev.id, dev.name, dev.session_id).ops.append(
                    CloseSession(event.summary)
                )
                dev.progress_due = False
        if events:
            self._mark(dev, batch)
            self.fleet.track(dev)

    def _clock_refused(self, dev: DeviceRuntime, now: float) -> None:
        """Say (at most once a minute per machine) that its clock is off."""
        key = (dev.id, "clock")
        if now - dev.reject_logged.get(key, -1e9) >= REJECT_LOG_EVERY_S:
            dev.reject_logged[key] = now
            _logger.warning(
                "Device %s: its clock is more than %d s ahead of the runner's "
                "(or further behind than a broker keeps readings); its frames "
                "are read at their receive time",
                dev.name,
                int(self.limits.max_clock_ahead_s or 0),
            )

    def _rejected(
        self,
        dev: DeviceRuntime,
        conn_id: int,
        msg: Message,
        exc: RejectedPayload,
        batch: Batch,
        now: float,
    ) -> None:
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

    def _unmatched(self, conn_id: int, msg: Message, batch: Batch, now: float) -> None:
        batch.stats[conn_id]["unmatched"] += 1
        if self.fleet.discovery.get(conn_id) and msg.topic.endswith("/events/rpc"):
            self._discover(conn_id, msg, batch)
        key = (conn_id, msg.topic)
        if now - self.fleet.unmatched_logged.get(key, -1e9) >= UNMATCHED_LOG_EVERY_S:
            if len(self.fleet.unmatched_logged) > 10_000:
                self.fleet.unmatched_logged.clear()
            self.fleet.unmatched_logged[key] = now
            self._raw(
                batch, conn_id, None, msg, "unmatched", None, None, None, problem=True
            )

    def _discover(self, conn_id: int, msg: Message, batch: Batch) -> None:
        """Propose an unknown Shelly as a discovered machine, while fewer than
        MAX_DISCOVERED of the connection's proposals wait for a manager."""
        prefix = msg.topic[: -len("/events/rpc")]
        seen = self.fleet.discovered_seen.setdefault(conn_id, set())
        if prefix in seen or not prefix:
            return
        route = _peek_src(msg.payload)
        if route is None:
            return
        src, component = route
        waiting = self.fleet.discovered_waiting.get(conn_id, 0) + len(seen)
        if waiting >= MAX_DISCOVERED:
            if conn_id not in self.fleet.discovery_full:  # say it once
                self.fleet.discovery_full.add(conn_id)
                _logger.warning(
                    "Connection %s: %d discovered Shelly devices wait for a "
                    "manager; ignoring further ones until they are confirmed "
                    "or removed",
                    conn_id,
                    MAX_DISCOVERED,
                )
            return
        seen.add(prefix)
        batch.discovered[(conn_id, prefix)] = {
            "src": src,
            "component": component,
            "parser_type": DISCOVERING,
        }

    # -- raw log ----------------------------------------------------------
    def _raw(
        self,
        batch: Batch,
        conn_id: int,
        dev: DeviceRuntime | None,
        msg: Message,
        status: str,
        detail: str | RejectedPayload | None,
        ts: float | None,
        power: float | None,
        problem: bool = False,
    ) -> None:
        if problem:
            if batch.problem_rows >= MAX_RAW_PROBLEM_ROWS:
                return
            batch.problem_rows += 1
        if detail is not None and not isinstance(detail, str):
            detail = f"{detail.code}: {detail.detail}"[:250]
        company = dev.cfg.company_id if dev else self.fleet.company.get(conn_id)
        batch.raw_rows.append(
            RawRow(
                conn_id,
                dev.id if dev else None,
                company,
                msg,
                status,
                detail,
                ts,
                power,
            )
        )

    # -- watchdog, polls, flush support ----------------------------------
    def tick(self, batch: Batch) -> None:
        """Fire due debounces and silence timeouts (only while connected)."""
        for dev_id in list(self.active):
            dev = self.devices[dev_id]
            deadline = dev.state_machine.next_deadline()
            if deadline is None or dev.connection_id not in self.fleet.up_since:
                continue
            now = self.fleet.virtual_now(dev)
            if now >= deadline + TICK_GRACE_S:
                self._apply_events(dev, dev.take(TICK, grid(now)), batch)

    def due_polls(self) -> list[tuple[int, str, str]]:
        """[(connection id, topic, payload)] of status polls to publish now."""
        now = self.clock()
        out = []
        for dev in self.devices.values():
            interval = dev.cfg.poll_interval_s
            if (
                not interval
                or dev.reply_src is None
                or dev.connection_id not in self.fleet.up_since
                or now - max(dev.last_recv_mono, dev.last_poll_mono) < interval
            ):
                continue
            # Not guessable: a reply must name a request we sent that meter.
            request_id = secrets.randbits(31)
            try:
                suffix, payload = poll_request(
                    dev.cfg.component or "", request_id, dev.reply_src
                )
            except ValueError:
                continue  # a component without a status poll
            dev.last_poll_mono = now
            self._pending_polls[request_id] = (dev.id, now)
            out.append((dev.connection_id, f"{dev.cfg.topic_prefix}/{suffix}", payload))
        if len(self._pending_polls) > 4 * max(1, len(self.devices)):
            cutoff = now - POLL_TTL_S
            self._pending_polls = {
                k: v for k, v in self._pending_polls.items() if v[1] >= cutoff
            }
        return out

    def seal(self, batch: Batch) -> None:
        """Complete the batch for the writer: the open sessions' progress, one
        live row per dirty machine, and the machines to announce to open
        browsers.  Sealing again (after a resync) adds no second progress."""
        self._progress_ops(batch)
        batch.live = {}
        batch.history_chunks = []
        for dev_id in batch.dirty:
            dev = self.devices.get(dev_id)
            if dev is None:
                continue
            batch.live[dev_id] = dev.live_row()
            if dev.history is not None:
                batch.history_chunks.extend(dev.history.chunks)
        batch.notify = self._notification(batch)

    def _progress_ops(self, batch: Batch) -> None:
        """Running sessions whose durations the database should see now."""
        now = self.clock()
        for dev_id in (self.active | set(batch.sessions)) - batch.progressed:
            dev = self.devices.get(dev_id)
            if dev is None:
                continue
            work = batch.sessions.get(dev_id)
            if dev.session_id is None and not (work and work.ops):
                continue
            if not (dev.progress_due or now - dev.progress_mono >= PROGRESS_EVERY_S):
                continue  # (the summary is computed only when it is written)
            summary = dev.state_machine.session
            if summary is not None:
                work = batch.session_work(dev.id, dev.name, dev.session_id)
                work.ops.append(UpdateSession(summary))
                batch.progressed.add(dev_id)
                dev.progress_mono = now
                dev.progress_due = False

    def _notification(self, batch: Batch) -> list[int] | None:
        """Machine ids to announce to open browsers with this flush, or None:
        at most once a second (the board reloads at most twice a second)."""
        ids = self._to_notify | batch.dirty
        if not ids or self.clock() - self._notified_at < NOTIFY_EVERY_S:
            return None
        return sorted(ids)

    def committed(self, batch: Batch, result: WriteResult) -> None:
        """After the commit: adopt the open session ids, forget what is done."""
        for dev_id, session_id in result.session_ids.items():
            dev = self.devices.get(dev_id)
            if dev is not None:
                dev.session_id = session_id
        for dev_id in batch.dirty:
            dev = self.devices.get(dev_id)
            if dev is not None:
                dev.fault = None  # written: it stays until a manager dismisses it
                if dev.history is not None:
                    dev.history.written()
        if batch.notify is not None:
            self._to_notify.clear()
            self._notified_at = self.clock()
        else:
            self._to_notify.update(batch.dirty)
        for conn_id, mids in batch.done_mids.items():
            self.fleet.committed.get(conn_id, set()).difference_update(mids)
        for dev_id in batch.quarantined:
            # Its state here ran ahead of the database: reload it from there.
            dev = self.devices.get(dev_id)
            if dev is not None:
                self.fleet.forget(dev)

    def remember_unacked(self, conn_id: int, mids: Iterable[int]) -> None:
        self.fleet.committed.setdefault(conn_id, set()).update(mids)


def one_line(exc: BaseException) -> str:
    """An exception as one short line (for a raw row and the machine's flag)."""
    text = str(exc).strip().split("\n", 1)[0]
    return f"{type(exc).__name__}: {text}"[:250] if text else type(exc).__name__


def _peek_src(payload: bytes) -> tuple[str, str] | None:
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
    return src[:64], discovered_component(src, list(params))


def _newer(
    last_read: LastRead | None,
    reading: Reading,
    ts: float,
    last_ts: float,
    power: float | None,
    energy: float | None,
) -> bool:
    """Whether a reading the 1 ms grid put on or before the machine's last
    reading is newer all the same, and so goes 1 ms after it.

    Two frames timed by their arrival can share a millisecond (a Gen1 meter
    sends power and counter back to back; a burst pushes each next one a
    millisecond on), and a Shelly's clock (10 ms steps) gives two frames of
    one instant the same time (the counter right behind the power).  Newer
    means later than the last reading applied by its unrounded time, or at
    that very time with values no frame of that instant had; a copy of any
    of them (the meter sends a pair again) stays a duplicate.
    Without that reading (a restored machine) only an arrival-timed frame in
    the same millisecond counts as newer.
    """
    if last_read is not None:
        read_ts = cast(float, last_read[0])  # the time first, then numbers or None
        if reading.ts != read_ts:
            return reading.ts > read_ts
        return (power, energy) not in zip(last_read[1::2], last_read[2::2], strict=True)
    return ts == last_ts and reading.ts_source != TS_DEVICE
