"""Vacuum the rows the runner rewrites, where autovacuum does not.

The runner rewrites a machine's row with every flush that carries a reading
of it (models/hot_rows.py).  Most of those updates stay on their page and
are pruned without VACUUM; the few that move (a row that grew past its
page's room) leave a dead version and an index entry behind, which only a
VACUUM clears and whose space only a VACUUM offers to new versions.
Autovacuum does that every minute or so, where it runs.  Where it is off
(some test and CI clusters) or far behind, nothing would; so the runner
vacuums these tables itself, on its own autocommit connection, when they
hold dead versions and no VACUUM has run on them for a while.  Where
autovacuum keeps up, the runner never has to.
"""

import logging
import time

import psycopg2
from psycopg2 import sql

from ...models.hot_rows import REWRITTEN
from .locks import LockConnectionLost

_logger = logging.getLogger(__name__)

CHECK_EVERY_S = 300.0
# A VACUUM this recent (autovacuum's or ours) will do; a little under two
# checks, so that with autovacuum off the runner vacuums every 10 minutes.
VACUUMED_WITHIN_S = 540.0
DEAD_MIN = 1000  # dead row versions worth a VACUUM


def due(stats, vacuumed_within_s=VACUUMED_WITHIN_S, dead_min=DEAD_MIN):
    """The tables of ``stats`` (``(table, dead versions, seconds since its
    last VACUUM or None)``) that need one now."""
    return [
        table
        for table, dead, since in stats
        if dead >= dead_min and (since is None or since >= vacuumed_within_s)
    ]


class TableUpkeep:
    """Checks every ``CHECK_EVERY_S`` (the first ``start_after_s`` after the
    runner starts) on ``locks``' autocommit connection and vacuums what
    ``due`` names.  It runs on the runner's thread: the VACUUM neither
    truncates the table (that would wait on readers, then lock them out) nor
    waits for a lock.  Any failure but a closed connection is logged: the
    runner's work does not depend on it."""

    def __init__(
        self,
        locks,
        dead_min=DEAD_MIN,
        vacuumed_within_s=VACUUMED_WITHIN_S,
        start_after_s=CHECK_EVERY_S,
    ):
        self.locks = locks
        self.dead_min = dead_min
        self.vacuumed_within_s = vacuumed_within_s
        self.start_after_s = start_after_s
        self.next_check = None

    def run_if_due(self, now):
        """Vacuum what needs it when a check is due (``now``: monotonic);
        returns the tables vacuumed."""
        if self.next_check is None:
            self.next_check = now + self.start_after_s
        if now < self.next_check:
            return []
        self.next_check = now + CHECK_EVERY_S
        cnx = self.locks.cnx
        if cnx is None:
            return []
        try:
            return self._vacuum_due(cnx)
        except psycopg2.Error as exc:
            if cnx.closed:  # and with it the runner's advisory locks
                raise LockConnectionLost(str(exc)) from exc
            # A statement timeout, a cancel, a full disk: next time, maybe.
            _logger.warning("Vacuuming the machines' rows failed: %s", exc)
            return []

    def _vacuum_due(self, cnx):
        with cnx.cursor() as cur:
            cur.execute(
                "SELECT relname, n_dead_tup, EXTRACT(EPOCH FROM now() - "
                "GREATEST(last_vacuum, last_autovacuum)) FROM pg_stat_user_tables "
                "WHERE relname = ANY(%s) AND schemaname = current_schema()",
                (list(REWRITTEN),),
            )
            stats = [
                (table, dead, None if since is None else float(since))
                for table, dead, since in cur.fetchall()
            ]
            found = {table: (count, since) for table, count, since in stats}
            done = []
            for table in due(stats, self.vacuumed_within_s, self.dead_min):
                started = time.monotonic()
                del cnx.notices[:]
                # SKIP_LOCKED: another node's runner (or autovacuum) at it now
                # will do.  A table skipped (locked, or not ours to vacuum) is
                # a WARNING, not an error.
                cur.execute(
                    sql.SQL("VACUUM (SKIP_LOCKED, TRUNCATE false) {}").format(
                        sql.Identifier(table)
                    )
                )
                if cnx.notices:
                    _logger.warning(
                        "Not vacuumed %s: %s", table, " ".join(cnx.notices).strip()
                    )
                    continue
                count, since = found[table]
                _logger.info(
                    "Vacuumed %s (%d dead row versions, last VACUUM %s) in %.0f ms",
                    table,
                    count,
                    "never" if since is None else f"{since / 60:.0f} min ago",
                    (time.monotonic() - started) * 1000,
                )
                done.append(table)
            return done
