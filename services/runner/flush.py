"""Writing a batch: one transaction, retried until it commits, then the acks.

A part of the database runner (database_runner.py, its ``flusher``), kept
apart because it is the one place where delivery guarantees are decided.
A batch is

* retried on serialization conflicts, deadlocks and lost database
  connections (never half written, never written twice);
* dropped for connections this runner no longer owns (the new owner gets
  the messages again from the broker);
* resynced with the database when it refuses the batch (a unique index: a
  person started or stopped a session meanwhile), at most ``MAX_RESYNCS``
  times;
* after a failure that is none of those (a bug met by some machine's data,
  or a refusal a resync did not cure), written again with each machine's
  part under its own savepoint: the machine whose part fails is quarantined,
  the rest commits (writer.py);

and its QoS 1 messages are acknowledged only after the commit.
"""

import logging
import time

import psycopg2
import psycopg2.errors

from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry

from ..engine.batch import Batch, ConnectionRow
from ..mqtt.backoff import Backoff
from ..mqtt.texts import db_write_failing
from .config import load_devices
from .detector import SessionsChanged
from .locks import CONNECTION_LOST
from .writer import LostOwnership, write_batch

_logger = logging.getLogger(__name__)

DB_ERROR = "Database write failing:"  # the English start of db_write_failing()
RETRYABLE = (
    psycopg2.errors.SerializationFailure,
    psycopg2.errors.DeadlockDetected,
    psycopg2.errors.LockNotAvailable,
)
# Database conditions with a policy of their own: never quarantined.  A
# refusal (IntegrityError) is not among them: when resyncing did not cure
# it, it is one machine's, and that machine is quarantined like any other.
KNOWN = (LostOwnership, *RETRYABLE, *CONNECTION_LOST)
# Resyncs of one batch before its machines are written apart: a refusal the
# database state explains is cured by the first; one more covers a person
# who acted again while it ran.
MAX_RESYNCS = 2
HEARTBEAT_EVERY_S = 2.0


def retry_backoff() -> Backoff:
    """A batch's write retries: 50 ms doubling up to 10 s, spread out."""
    return Backoff(0.05, 10.0, 2.0, jitter=1.0)


class _Attempt:
    """How one batch's write goes: its retry delays, whether its machines are
    written apart yet, how often it was resynced."""

    def __init__(self):
        self.backoff = retry_backoff()
        self.isolate = False
        self.resyncs = 0


class Flusher:
    """Writes a database runner's batches: ``flush(batch)`` seals, writes
    (retrying by the policy above), acknowledges.

    Part of a ``DatabaseRunner`` (``runner``): it reads its engine, owned
    connections, node and stop event, releases a connection taken over,
    and asks it to reconcile (``runner.reload``) and to show its state at
    once (``runner.next_heartbeat``)."""

    def __init__(self, runner):
        self.runner = runner
        self.count = 0  # batches written
        self.errors = 0  # attempts that failed
        self.db_error = False  # the form shows a write failing

    def flush(self, batch, heartbeat=False):
        """Seal the batch, write it in one transaction (retrying), ack it.

        Returns the next (empty) batch."""
        runner = self.runner
        if batch.empty and (not heartbeat or not runner.owned):
            return batch
        runner.engine.seal(batch)
        batch.connections = self.connection_rows(batch)
        result = self._write(batch)
        if result is None:
            return Batch()  # shutting down: unacked messages come again
        self.count += 1
        runner.engine.committed(batch, result)
        self._ack(batch)
        if batch.quarantined:
            runner.reload = True  # the engine reloads those machines from there
        runner.next_heartbeat = time.monotonic() + HEARTBEAT_EVERY_S
        if self.db_error:  # recovered: the form must not keep the old error
            self.db_error = False
            runner.next_heartbeat = 0.0
            for owned in runner.owned.values():
                if (owned.last_error or "").startswith(DB_ERROR):
                    owned.last_error = None
        return Batch()

    def _write(self, batch):
        """Write ``batch`` until it commits; its WriteResult, or None when
        the runner stops first."""
        runner = self.runner
        attempt = _Attempt()
        while True:
            try:
                with Registry(runner.dbname).cursor() as cr:
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    return write_batch(env, batch, isolate=attempt.isolate, known=KNOWN)
            except LostOwnership as exc:
                _logger.warning("%s; dropping its uncommitted batch", exc)
                for conn_id in exc.connection_ids:
                    runner.release(conn_id, stopped=False)
                batch.drop_connections(exc.connection_ids, runner.engine.devices)
                attempt.backoff.reset()
                continue
            except RETRYABLE as exc:
                _logger.info("Flush conflict (%s); retrying", type(exc).__name__)
            except (psycopg2.IntegrityError, SessionsChanged) as exc:
                if self._refused(batch, attempt, exc):
                    continue
            except Exception as exc:  # pylint: disable=broad-except
                self.errors += 1
                if runner.stopping.is_set():
                    _logger.warning(
                        "Stopping: the last batch of %d messages was not written "
                        "(%s); the broker sends its messages again",
                        len(batch),
                        _reason(exc),
                    )
                    return None
                if not attempt.isolate and not isinstance(exc, CONNECTION_LOST):
                    _logger.exception(
                        "Writing a batch of %d messages failed; writing each "
                        "machine's part apart to isolate the failing one",
                        len(batch),
                    )
                    attempt.isolate = True
                    continue
                self._write_failing(batch, exc)
            if runner.stopping.wait(attempt.backoff.next()):
                return None

    def _refused(self, batch, attempt, exc):
        """The database refused the batch: resync (at most MAX_RESYNCS
        times), then isolate the refused machine.  Whether to try again at
        once."""
        if not attempt.isolate and attempt.resyncs < MAX_RESYNCS:
            attempt.resyncs += 1
            _logger.warning(
                "Flush refused by the database (%s); resyncing the machines with it",
                _reason(exc),
            )
            self.runner.reload = True
            self._resync_sessions(batch)
            return True
        if not attempt.isolate:
            _logger.warning(
                "Flush still refused after %d resyncs (%s); writing each "
                "machine's part apart to isolate the refused one",
                attempt.resyncs,
                _reason(exc),
            )
            attempt.isolate = True
            return True
        self.errors += 1
        self._write_failing(batch, exc)
        return False

    def _write_failing(self, batch, exc):
        """The write keeps failing: say so on the form, log it (the traceback
        only when it is not the database connection that broke)."""
        reason = _reason(exc)
        if isinstance(exc, CONNECTION_LOST):
            # The database connection broke (server restart, failover,
            # pg_terminate_backend): an operating condition, not a bug.
            # The retry borrows a fresh connection from the pool.
            _logger.warning(
                "Writing a batch of %d messages failed: database connection lost "
                "(%s); retrying",
                len(batch),
                reason,
            )
        else:
            _logger.exception(
                "Writing a batch of %d messages failed even machine by machine; "
                "retrying",
                len(batch),
            )
        for owned in self.runner.owned.values():
            owned.last_error = db_write_failing(reason[:200])
        self.db_error = True

    def connection_rows(self, batch):
        """The owned connections' lines of ``batch`` (fencing token, state)."""
        runner = self.runner
        rows = {}
        for conn_id, owned in runner.owned.items():
            mids = {m.mid for c, m, _d in batch.acks if c == conn_id and m.qos}
            mids.update(runner.engine.committed_mids(conn_id))
            rows[conn_id] = ConnectionRow(
                token=owned.token,
                node=runner.node,
                state=owned.state,
                last_error=owned.last_error,
                connected_at=owned.connected_at,
                committed_mids=sorted(mids),
                queue_depth=runner.queue.qsize(),
            )
        return rows

    def _ack(self, batch):
        """Acknowledge the committed QoS 1 messages, one write per connection;
        a message that could not be acknowledged stays known as committed."""
        by_connection: dict[int, list] = {}
        for conn_id, msg, _dev in batch.acks:
            if msg.qos:
                by_connection.setdefault(conn_id, []).append(msg)
        for conn_id, msgs in by_connection.items():
            owned = self.runner.owned.get(conn_id)
            acked = owned.client.ack_many(msgs) if owned is not None else []
            if len(acked) < len(msgs):
                done = {id(m) for m in acked}
                self.runner.engine.remember_unacked(
                    conn_id, [m.mid for m in msgs if id(m) not in done]
                )

    def _resync_sessions(self, batch):
        """The database refused a session write (a person started or stopped
        one by hand meanwhile): bring each machine in line with it.  The
        batch keeps what it can still write (finished sessions, readings);
        a session it opened that the person's now replaces is written closed
        (``Fleet._sync_session``)."""
        runner = self.runner
        with Registry(runner.dbname).cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            configs = load_devices(env, list(runner.owned), runner.engine.needs_state)
        for cfg in configs:
            if cfg.id in runner.engine.devices:
                runner.engine.upsert_device(cfg, batch)
        runner.engine.seal(batch)


def _reason(exc):
    return str(exc).strip().split("\n", 1)[0]
