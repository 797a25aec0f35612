"""The runner's own PostgreSQL connection: ownership locks and change signals.

One autocommit connection per database runner, never a pooled Odoo cursor
(OCA queue_job's lesson): it holds a session advisory lock per broker
connection the runner consumes (``pg_try_advisory_lock(LOCK_KEY, id)``), so
PostgreSQL itself drops them when the process or the connection dies; and it
LISTENs for configuration changes.  TCP keepalives make a cut network show up
within seconds.  Any error on it means every lock may be gone:
``LockConnectionLost``, and the runner lets every broker connection go.
"""

import logging
import select

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from odoo import sql_db

from ...models.runner_signal import CHANNEL, REV_SEQUENCE

_logger = logging.getLogger(__name__)

LOCK_KEY = 0x4F574D51  # "OWMQ": first key of pg_try_advisory_lock(int, int)
# What a broken connection raises (a server gone, a backend terminated, a
# cursor closed under us); the flush's retry policy reads it too.
CONNECTION_LOST = (psycopg2.OperationalError, psycopg2.InterfaceError)


class LockConnectionLost(Exception):
    """The autocommit connection holding our advisory locks broke: all are gone."""


class RunnerLocks:
    """Advisory locks and change signals on one autocommit connection."""

    def __init__(self, dbname, node):
        self.dbname = dbname
        self.node = node
        self.cnx = None
        self._last_rev = None

    def open(self):
        _name, info = sql_db.connection_info_for(self.dbname)
        info = dict(info)
        info.setdefault("keepalives", 1)
        info.setdefault("keepalives_idle", 5)
        info.setdefault("keepalives_interval", 2)
        info.setdefault("keepalives_count", 3)
        info["application_name"] = f"owm-runner {self.node}"[:63]
        cnx = psycopg2.connect(**info)
        cnx.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with cnx.cursor() as cur:
            cur.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        self.cnx = cnx
        self._last_rev = None

    def close(self):
        if self.cnx is not None:
            try:
                self.cnx.close()
            except psycopg2.Error as exc:
                _logger.debug("Closing the lock connection: %s", exc)
            self.cnx = None

    @property
    def _live(self):
        """The open lock connection (LockConnectionLost when there is none)."""
        if self.cnx is None:
            raise LockConnectionLost("the lock connection is not open")
        return self.cnx

    def try_lock(self, conn_id):
        try:
            with self._live.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_KEY, conn_id))
                return cur.fetchone()[0]
        except CONNECTION_LOST as exc:
            raise LockConnectionLost(str(exc)) from exc

    def unlock(self, conn_id):
        if self.cnx is None:
            return
        try:
            with self.cnx.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_KEY, conn_id))
        except psycopg2.Error as exc:  # the lock connection is gone: so is the lock
            _logger.debug("Unlocking connection %s: %s", conn_id, exc)

    def notified(self):
        """Did a committed change of this database's configuration NOTIFY us?"""
        found = False
        try:
            cnx = self._live
            if select.select([cnx], [], [], 0)[0]:
                cnx.poll()
                found = any(n.payload == self.dbname for n in cnx.notifies)
                cnx.notifies.clear()
        except CONNECTION_LOST as exc:
            raise LockConnectionLost(str(exc)) from exc
        return found

    def revision_changed(self):
        """Has the configuration revision moved (also before its commit)?"""
        try:
            with self._live.cursor() as cur:
                cur.execute(
                    sql.SQL("SELECT last_value FROM {}").format(
                        sql.Identifier(REV_SEQUENCE)
                    )
                )
                rev = cur.fetchone()[0]
        except CONNECTION_LOST as exc:
            raise LockConnectionLost(str(exc)) from exc
        changed = rev != self._last_rev
        self._last_rev = rev
        return changed
