"""Writing a batch: one transaction, retried until it commits, then the acks.

Part of IotBridgeService (iot_bridge_service.py), kept apart because it is the
one place where delivery guarantees are decided: a batch is retried on
serialization conflicts and lost database connections (never half written,
never written twice), dropped only for connections this runner no longer owns
(the new owner gets the messages again from the broker), and its QoS 1
messages are acknowledged only after the commit.
"""

import logging
import random
import time

import psycopg2
import psycopg2.errors

from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry

from .bridge_core import Batch
from .config_loader import load_devices
from .flush_writer import LostOwnership, write_batch
from .mqtt_messages import db_write_failing

_logger = logging.getLogger(__name__)

DB_ERROR = "Database write failing:"  # the English start of db_write_failing()
RETRYABLE = (
    psycopg2.errors.SerializationFailure,
    psycopg2.errors.DeadlockDetected,
    psycopg2.errors.LockNotAvailable,
)
HEARTBEAT_EVERY_S = 2.0


class BatchFlusher:
    """Mixin of IotBridgeService: ``_flush`` and what it needs.

    Uses the service's ``dbname``, ``core``, ``owned``, ``node``, ``_stop``,
    ``_release()`` and its flags (``_reload``, ``_db_error``,
    ``_next_heartbeat``, ``flush_count``, ``flush_errors``)."""

    def _flush(self, batch, heartbeat=False):
        """Write the batch in one transaction (retrying), then ack it.

        Returns the next (empty) batch."""
        if batch.empty and (not heartbeat or not self.owned):
            return batch
        self.core.progress_ops(batch)
        connections = self._connection_runtime(batch)
        delay = 0.05
        while True:
            notify = self.core.notification(batch)
            try:
                with Registry(self.dbname).cursor() as cr:
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    session_ids = write_batch(
                        env, self.core, batch, connections, notify
                    )
                break
            except LostOwnership as exc:
                _logger.warning("%s; dropping its uncommitted batch", exc)
                for conn_id in exc.connection_ids:
                    self._release(conn_id, stopped=False)
                connections = {k: v for k, v in connections.items() if k in self.owned}
                batch.drop_connections(exc.connection_ids, self.core.devices)
                delay = 0.05
            except RETRYABLE as exc:
                _logger.info("Flush conflict (%s); retrying", type(exc).__name__)
                self._stop.wait(delay * (1 + random.random()))
                delay = min(delay * 2, 2.0)
            except psycopg2.IntegrityError as exc:
                _logger.warning("Flush refused by the database (%s); resyncing", exc)
                self._reload = True
                self._resync_sessions(batch)
                if self._stop.wait(delay * (1 + random.random())):
                    return Batch()
                delay = min(delay * 2, 10.0)
            except Exception as exc:
                self.flush_errors += 1
                reason = str(exc).strip().split("\n", 1)[0]
                if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
                    # The database connection broke (server restart, failover,
                    # pg_terminate_backend): an operating condition, not a bug.
                    # The retry borrows a fresh connection from the pool.
                    _logger.warning(
                        "Writing a batch of %d messages failed: database "
                        "connection lost (%s); retrying",
                        len(batch),
                        reason,
                    )
                else:
                    _logger.exception(
                        "Writing a batch of %d messages failed; retrying", len(batch)
                    )
                for owned in self.owned.values():
                    owned.last_error = db_write_failing(reason[:200])
                self._db_error = True
                if self._stop.wait(delay * (1 + random.random())):
                    return Batch()  # shutting down: unacked messages come again
                delay = min(delay * 2, 10.0)
        self.flush_count += 1
        self.core.committed(batch, session_ids, notified=notify is not None)
        self._ack(batch)
        self._next_heartbeat = time.monotonic() + HEARTBEAT_EVERY_S
        if self._db_error:  # recovered: the form must not keep the old error
            self._db_error = False
            self._next_heartbeat = 0.0
            for owned in self.owned.values():
                if (owned.last_error or "").startswith(DB_ERROR):
                    owned.last_error = None
        return Batch()

    def _connection_runtime(self, batch):
        out = {}
        for conn_id, owned in self.owned.items():
            out[conn_id] = {
                "token": owned.token,
                "node": self.node,
                "state": owned.state,
                "last_error": owned.last_error,
                "connected_at": owned.connected_at,
                "mids": [m.mid for cid, m in batch.acks if cid == conn_id and m.qos],
            }
        return out

    def _ack(self, batch):
        """Acknowledge the committed QoS 1 messages, one write per connection;
        a message that could not be acknowledged stays known as committed."""
        by_connection = {}
        for conn_id, msg in batch.acks:
            if msg.qos:
                by_connection.setdefault(conn_id, []).append(msg)
        for conn_id, msgs in by_connection.items():
            owned = self.owned.get(conn_id)
            acked = owned.client.ack_many(msgs) if owned is not None else []
            if len(acked) < len(msgs):
                done = {id(m) for m in acked}
                self.core.remember_unacked(
                    conn_id, [m.mid for m in msgs if id(m) not in done]
                )

    def _resync_sessions(self, batch):
        """The database refused a session write (a user started one by hand
        at the same moment): the database wins for those devices only."""
        with Registry(self.dbname).cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            configs = load_devices(env, list(self.owned))
        for cfg in configs:
            dev = self.core.devices.get(cfg.id)
            ops = batch.session_ops.get(cfg.id)
            if dev is None or not ops or not cfg.running_session_id:
                continue
            if cfg.running_session_id != dev.session_id:
                del batch.session_ops[cfg.id]
                self.core.upsert_device(cfg, batch)
