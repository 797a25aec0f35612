"""DatabaseRunner: the database runner, the MQTT runner of one database.

One thread per database owns everything mutable (the engine, the batch, the
MQTT clients' subscriptions); paho network threads only enqueue.

Ownership: a broker connection is consumed only while this service holds
``pg_try_advisory_lock(LOCK_KEY, connection_id)`` on its own autocommit
PostgreSQL connection (never a pooled Odoo cursor).  Each acquisition writes
a fresh fencing token on the connection row, and every flush checks it: a
runner that lost its lock without noticing cannot commit a batch after
another node took over.  When this process dies, PostgreSQL drops the lock
and another runner takes over at its next reconcile (<= 2 s).

Delivery: QoS 1 messages are acknowledged only after the transaction that
recorded them committed.  A crash before the ack makes the broker redeliver
(DUP flag); the mids committed but maybe not acknowledged are stored on the
connection row, so a redelivery of an already committed message is skipped.
"""

import dataclasses
import functools
import logging
import os
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import NamedTuple

import psycopg2

from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry

from ..engine.batch import Batch
from ..engine.engine import Engine
from ..engine.fleet import LIVE_LIMITS
from ..mqtt import client as mqtt_client
from ..mqtt.backoff import Backoff
from ..mqtt.inbound import InboundMessage
from .config import load_connections, load_devices
from .flush import Flusher
from .heap import settle
from .locks import LockConnectionLost, RunnerLocks
from .upkeep import TableUpkeep

_logger = logging.getLogger(__name__)

RECONCILE_EVERY_S = 30.0  # safety net; NOTIFY and the revision make it ~instant
TAKEOVER_CHECK_S = 2.0  # how often a standby tries the locks of unowned connections
REV_POLL_S = 1.0
HOUSEKEEPING_S = 0.25


class Received(NamedTuple):
    """A message of an owned connection, from its network thread."""

    conn_id: int
    msg: InboundMessage


@dataclass(frozen=True, slots=True)
class StateChange:
    """An owned connection's new state (and why), from its network thread."""

    conn_id: int
    state: str
    error: object


# A batch is written once its first message arrived this long ago (or once
# it holds MAX_BATCH messages).  250 ms: about four flushes a second at a
# workshop's rate, as many as 200 ms counted from the runner's pick-up gave,
# with a p99 latency of about 350 ms there (bench/ingest.py).
FLUSH_INTERVAL_S = 0.25
MAX_BATCH = 2000


class RunnerSettings:
    """Tunables of the runner (see ``MqttRunner.from_environ_or_config``)."""

    def __init__(
        self,
        flush_interval_s=FLUSH_INTERVAL_S,
        max_batch=MAX_BATCH,
        node=None,
        limits=None,
        history=True,
    ):
        self.flush_interval_s = flush_interval_s
        self.max_batch = max_batch
        self.node = node or f"{socket.gethostname()}:{os.getpid()}"
        self.limits = limits or LIVE_LIMITS
        self.history = history


class _Owned:
    """A broker connection this service consumes."""

    def __init__(self, conn_id, cfg, token, client):
        self.id = conn_id
        self.cfg = cfg
        self.token = token
        self.client = client
        self.state = mqtt_client.CONNECTING
        self.last_error = None
        self.connected_at = None


class DatabaseRunner:
    """The runner of one database, in a daemon thread; its batches are
    written by its ``flusher`` (flush.py)."""

    def __init__(self, dbname, settings=None):
        self.dbname = dbname
        self.settings = settings or RunnerSettings()
        self.node = self.settings.node
        self.engine = Engine(self.settings.limits, history=self.settings.history)
        # The network threads' hand-off, one put and one get per message:
        # SimpleQueue (C, unbounded like the Queue it replaced) costs a tenth
        # of Queue's Python locking (0.16 against 1.55 us a message, alone).
        self.queue: queue.SimpleQueue[Received | StateChange] = queue.SimpleQueue()
        self.owned = {}
        self.stopping = threading.Event()
        self._thread = None
        self._locks = RunnerLocks(dbname, self.node)
        self._upkeep = TableUpkeep(self._locks)
        self.reload = True
        self._reload_again_at = None
        self._next_rev_poll = 0.0
        self._next_reconcile = 0.0
        self.next_heartbeat = 0.0
        self._booted = False
        self._connections = {}
        self._next_takeover_check = 0.0
        self._housekeeping_at = 0.0
        self.flusher = Flusher(self)

    # -- lifecycle ----------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(
            target=self.run, name=f"owm-runner-{self.dbname}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout=10.0):
        self.stopping.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self):
        return bool(self._thread and self._thread.is_alive())

    def run(self):
        """Outer recovery loop: log, close everything, wait, start over."""
        backoff = Backoff(1.0, 30.0, 2.0)
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self._serve()
            except LockConnectionLost as exc:
                _logger.warning(
                    "MQTT runner of %s lost its database lock connection (%s); "
                    "releasing every broker connection and starting over",
                    self.dbname,
                    exc,
                )
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                # The database went away (restart, failover, network): an
                # operating condition, not a bug. Nothing unacked is lost.
                _logger.warning(
                    "MQTT runner of %s lost its database connection (%s); "
                    "starting over",
                    self.dbname,
                    str(exc).strip().split("\n", 1)[0],
                )
            except Exception:
                _logger.exception("MQTT runner of %s failed; restarting", self.dbname)
            finally:
                self._shutdown()
            if time.monotonic() - started > 60:
                backoff.reset()  # it ran a good while: a fresh failure
            self.stopping.wait(backoff.next())

    # -- main loop ------------------------------------------------------------
    def _serve(self):
        self._locks.open()
        self.reload = True
        batch = Batch()
        while not self.stopping.is_set():
            self._collect(batch)
            now = time.monotonic()
            if now >= self._housekeeping_at:
                self._housekeeping_at = now + HOUSEKEEPING_S
                self._check_notifications(now)
                self._check_takeover(now)
                self.engine.tick(batch)
                self._send_polls()
                self._upkeep.run_if_due(now)
            if self._flush_due(batch, now):
                batch = self.flusher.flush(batch)
            if self.reload or now >= self._next_reconcile:
                batch = self.flusher.flush(batch)
                self._reconcile(batch)
                batch = self.flusher.flush(batch)
                settle()  # the registries loaded: out of the full collections
            elif now >= self.next_heartbeat:
                batch = self.flusher.flush(batch, heartbeat=True)
        self.flusher.flush(batch)

    def _flush_due(self, batch, now):
        """Whether ``batch`` is written now: once it is full or its first
        message waited the flush interval; at once when it holds no message
        (a timeout's state change or session has nothing to wait for).  A
        session a reading opened or closed waits with that reading: written
        at once, each session change cost a transaction of its own (2,000
        readings/s with 50 session changes a second: 30.6 instead of 16.2 %
        of a core)."""
        if batch.started is not None:
            return (
                len(batch) >= self.settings.max_batch
                or now - batch.started >= self.settings.flush_interval_s
            )
        return bool(batch.dirty or batch.sessions)

    def _collect(self, batch):
        """Take queued messages until a flush is due or the queue is empty."""
        now = time.monotonic()
        wait = HOUSEKEEPING_S
        if batch.started is not None:
            wait = max(0.0, batch.started + self.settings.flush_interval_s - now)
        wait = min(wait, max(0.0, self._housekeeping_at - now))
        try:
            item = self.queue.get(timeout=wait)
        except queue.Empty:
            return
        limit = self.settings.max_batch
        while True:
            self._dispatch(item, batch)
            if len(batch) >= limit:
                return
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return

    def _dispatch(self, item, batch):
        conn_id = item.conn_id
        owned = self.owned.get(conn_id)
        if owned is None:
            return  # a message of a connection we gave up: the broker redelivers it
        if type(item) is Received:
            # Also from an older network session: committed now, its ack is
            # skipped and the DUP redelivery is recognised as already done.
            self.engine.handle(conn_id, item.msg, batch)
            return
        state, error = item.state, item.error
        owned.state = state
        if error:
            owned.last_error = error
        if state == mqtt_client.CONNECTED:
            owned.last_error = None
            owned.connected_at = time.time()
            self.engine.connection_up(conn_id, owned.client.session_present)
            owned.client.set_subscriptions(self.engine.subscriptions(conn_id))
        else:
            self.engine.connection_down(conn_id)
        self.next_heartbeat = 0.0  # show the new state at once

    # -- notifications, polls ------------------------------------------------
    def _check_notifications(self, now):
        if self._locks.notified():
            self.reload = True
        if now >= self._next_rev_poll:
            self._next_rev_poll = now + REV_POLL_S
            if self._locks.revision_changed():
                self.reload = True
                # nextval() runs before the writer commits: look once more.
                self._reload_again_at = now + 2.0
        if self._reload_again_at and now >= self._reload_again_at:
            self._reload_again_at = None
            self.reload = True

    def _check_takeover(self, now):
        """A connection we want but another runner owns: is its lock free now
        (that runner died)?  Then reconcile at once to take it over."""
        if now < self._next_takeover_check:
            return
        self._next_takeover_check = now + TAKEOVER_CHECK_S
        for conn_id, info in self._connections.items():
            if (
                info.desired
                and conn_id not in self.owned
                and self._locks.try_lock(conn_id)
            ):
                self._locks.unlock(conn_id)
                self.reload = True
                return

    def _send_polls(self):
        for conn_id, topic, payload in self.engine.due_polls():
            owned = self.owned.get(conn_id)
            if owned is not None:
                owned.client.publish(topic, payload, qos=0)

    # -- reconcile -------------------------------------------------------------
    def _reconcile(self, batch):
        """Follow the database: connections to own or release, devices to load."""
        self.reload = False
        self._next_reconcile = time.monotonic() + RECONCILE_EVERY_S
        registry = Registry(self.dbname).check_signaling()
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            if not self._booted:
                self._booted = True
                cr.execute(
                    "UPDATE mqtt_connection SET run_requested = true "
                    "WHERE auto_start AND active AND run_requested IS NOT TRUE"
                )
            connections = load_connections(env)
        self._connections = connections
        for conn_id in list(self.owned):
            info = connections.get(conn_id)
            if info is None or not info.desired:
                self.release(conn_id, stopped=True)
            elif info.settings != self.owned[conn_id].cfg.settings:
                _logger.info("MQTT connection %s changed: reconnecting", info.name)
                self.release(conn_id, stopped=False)
            elif info.restart_count != self.owned[conn_id].cfg.restart_count:
                _logger.info("MQTT connection %s: restart requested", info.name)
                self.release(conn_id, stopped=False)
        for conn_id, info in connections.items():
            if info.desired and conn_id not in self.owned:
                self._acquire(conn_id, info)
            elif conn_id in self.owned:
                self.owned[conn_id].cfg = info
                self.engine.set_discovery(
                    conn_id, info.discovery, info.discovered_waiting
                )
            elif info.settings_error and info.desired is False:
                _logger.debug(
                    "Connection %s not startable: %s", conn_id, info.settings_error
                )
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            configs = load_devices(env, list(self.owned), self.engine.needs_state)
        wanted = {cfg.id: cfg for cfg in configs}
        for dev_id in list(self.engine.devices):
            if dev_id not in wanted:
                self.engine.remove_device(dev_id, batch)
        for cfg in configs:
            self.engine.upsert_device(cfg, batch)
        for conn_id, owned in self.owned.items():
            owned.client.set_subscriptions(self.engine.subscriptions(conn_id))
            owned.client.start()  # no-op when running

    def _acquire(self, conn_id, info):
        if not self._locks.try_lock(conn_id):
            return  # another runner owns it
        token = uuid.uuid4().hex
        try:
            with Registry(self.dbname).cursor() as cr:
                cr.execute(
                    "UPDATE mqtt_connection SET runner_token = %s, owner_node = %s, "
                    "state = 'connecting', heartbeat = (now() at time zone 'UTC'), "
                    "state_since = (now() at time zone 'UTC') WHERE id = %s",
                    (token, self.node, conn_id),
                )
        except Exception:
            self._locks.unlock(conn_id)
            raise
        # Unacknowledged messages in flight: a few batches' worth. More would
        # only queue here (latency); the broker keeps the rest (see README).
        settings = dataclasses.replace(
            info.settings, receive_maximum=max(1000, 3 * self.settings.max_batch)
        )
        client = mqtt_client.MqttClient(
            settings,
            handler=functools.partial(self._received, conn_id),
            on_state=functools.partial(self._state_changed, conn_id),
            name=info.name,
        )
        heartbeat = info.heartbeat
        self.engine.add_connection(
            conn_id,
            settings.client_id,
            info.discovery,
            committed_mids=info.committed_mids,
            unheard_s=time.time() - heartbeat if heartbeat else None,
            company_id=info.company_id,
            discovered_waiting=info.discovered_waiting,
        )
        self.owned[conn_id] = _Owned(conn_id, info, token, client)
        _logger.info(
            "MQTT runner %s consumes connection %s (%s)",
            self.node,
            info.name,
            settings.address,
        )

    def _received(self, conn_id: int, msg: InboundMessage) -> None:
        """A message of ``conn_id`` (on its network thread): queued."""
        self.queue.put(Received(conn_id, msg))

    def _state_changed(self, conn_id: int, state: str, error: object) -> None:
        """``conn_id``'s new state (on its network thread): queued."""
        self.queue.put(StateChange(conn_id, state, error))

    def release(self, conn_id, stopped):
        owned = self.owned.pop(conn_id, None)
        if owned is None:
            return
        owned.client.stop()
        self.engine.remove_connection(conn_id)
        if stopped:
            try:
                with Registry(self.dbname).cursor() as cr:
                    cr.execute(
                        "UPDATE mqtt_connection SET state = 'stopped', "
                        "state_since = (now() at time zone 'UTC'), "
                        "runner_token = NULL, owner_node = NULL, queue_depth = 0 "
                        "WHERE id = %s AND runner_token = %s",
                        (conn_id, owned.token),
                    )
            except psycopg2.Error:
                _logger.warning(
                    "Could not mark connection %s stopped", conn_id, exc_info=True
                )
        self._locks.unlock(conn_id)

    def _shutdown(self):
        for conn_id in list(self.owned):
            try:
                self.release(conn_id, stopped=False)
            except Exception:  # pylint: disable=broad-except
                _logger.exception("Releasing connection %s failed", conn_id)
        self._locks.close()
        self.engine = Engine(self.settings.limits, history=self.settings.history)
        self._booted = False
        drained = 0
        while True:  # messages of released connections: the broker redelivers them
            try:
                self.queue.get_nowait()
                drained += 1
            except queue.Empty:
                break
