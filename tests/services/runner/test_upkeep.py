# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from psycopg2 import errors

from odoo.tests import TransactionCase, tagged

from ....models.hot_rows import REWRITTEN
from ....services.runner.locks import LockConnectionLost, RunnerLocks
from ....services.runner.upkeep import CHECK_EVERY_S, TableUpkeep, due


class _CancelledConnection:
    """An open connection whose statements are cancelled (a statement timeout:
    an OperationalError, as a lost connection is)."""

    closed = 0
    notices: list = []

    def cursor(self):
        raise errors.QueryCanceled("canceling statement due to statement timeout")


class _Locks:
    def __init__(self, cnx):
        self.cnx = cnx


@tagged("post_install", "-at_install")
class TestTableUpkeep(TransactionCase):
    def test_a_table_is_vacuumed_when_dead_versions_wait_and_none_ran_lately(self):
        stats = [
            ("mqtt_device", 5000, None),  # never vacuumed
            ("mqtt_connection", 5000, 900.0),  # 15 minutes ago
            ("other_recent", 5000, 30.0),  # autovacuum keeps up
            ("other_clean", 10, None),  # nothing worth it
        ]
        self.assertEqual(
            due(stats, vacuumed_within_s=600, dead_min=1000),
            ["mqtt_device", "mqtt_connection"],
        )
        self.assertEqual(due([("mqtt_device", 999, None)], 600, 1000), [])
        self.assertEqual(due([("mqtt_device", 1000, 599.0)], 600, 1000), [])

    def _open_locks(self):
        # The runner's real autocommit connection on this database (VACUUM
        # cannot run in a transaction, such as this test's).
        locks = RunnerLocks(self.env.cr.dbname, "test-node")
        locks.open()
        self.addCleanup(locks.close)
        return locks

    def _last_vacuum(self, locks):
        with locks.cnx.cursor() as cur:
            cur.execute(
                "SELECT relname, last_vacuum FROM pg_stat_user_tables "
                "WHERE relname = ANY(%s)",
                (list(REWRITTEN),),
            )
            return dict(cur.fetchall())

    def test_the_runner_vacuums_on_its_own_connection_then_waits(self):
        locks = self._open_locks()
        before = self._last_vacuum(locks)
        # Due whatever ran before: any dead versions, any last VACUUM.
        upkeep = TableUpkeep(locks, dead_min=0, vacuumed_within_s=0, start_after_s=60)
        self.assertEqual(upkeep.run_if_due(now=100.0), [])  # not at the start
        vacuumed = upkeep.run_if_due(now=160.0)
        self.assertEqual(sorted(vacuumed), ["mqtt_connection", "mqtt_device"])
        after = self._last_vacuum(locks)
        for table in vacuumed:
            self.assertIsNotNone(after[table])
            self.assertNotEqual(after[table], before.get(table))
        # Not before the next check; at it, the VACUUM just run is recent enough.
        upkeep.vacuumed_within_s = 3600
        self.assertEqual(upkeep.run_if_due(now=160.0 + CHECK_EVERY_S - 1), [])
        self.assertEqual(upkeep.run_if_due(now=160.0 + CHECK_EVERY_S), [])
        self.assertEqual(self._last_vacuum(locks), after)

    def test_a_table_it_cannot_lock_now_is_skipped_not_waited_for(self):
        locks = self._open_locks()
        # This test's transaction holds the machines' table, as a long
        # migration would; the runner must neither wait nor say it vacuumed.
        self.env.cr.execute("LOCK TABLE mqtt_device IN SHARE UPDATE EXCLUSIVE MODE")
        before = self._last_vacuum(locks)
        upkeep = TableUpkeep(locks, dead_min=0, vacuumed_within_s=0, start_after_s=0)
        self.assertEqual(upkeep.run_if_due(now=0.0), ["mqtt_connection"])
        self.assertEqual(
            self._last_vacuum(locks)["mqtt_device"], before.get("mqtt_device")
        )

    def test_a_cancelled_vacuum_leaves_the_runner_its_connection(self):
        upkeep = TableUpkeep(_Locks(_CancelledConnection()), start_after_s=0)
        self.assertEqual(upkeep.run_if_due(now=0.0), [])  # logged, not raised
        # A connection that is gone is the runner's to handle: its locks went too.
        locks = self._open_locks()
        locks.cnx.close()
        upkeep = TableUpkeep(locks, start_after_s=0)
        with self.assertRaises(LockConnectionLost):
            upkeep.run_if_due(now=0.0)

    def test_without_its_connection_the_upkeep_does_nothing(self):
        locks = RunnerLocks(self.env.cr.dbname, "test-node")  # never opened
        upkeep = TableUpkeep(locks, dead_min=0, start_after_s=0)
        self.assertEqual(upkeep.run_if_due(now=0.0), [])
