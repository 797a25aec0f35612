# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo.tests import TransactionCase, tagged

from ....services.runner.locks import RunnerLocks
from ....services.runner.upkeep import CHECK_EVERY_S, TableUpkeep, due


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

    def _last_vacuum(self, locks):
        with locks.cnx.cursor() as cur:
            cur.execute(
                "SELECT relname, last_vacuum FROM pg_stat_user_tables "
                "WHERE relname IN ('mqtt_device', 'mqtt_connection')"
            )
            return dict(cur.fetchall())

    def test_the_runner_vacuums_on_its_own_connection_then_waits(self):
        # The runner's real autocommit connection on this database (VACUUM
        # cannot run in a transaction, such as this test's).
        locks = RunnerLocks(self.env.cr.dbname, "test-node")
        locks.open()
        self.addCleanup(locks.close)
        before = self._last_vacuum(locks)
        # Due whatever ran before: any dead versions, any last VACUUM.
        upkeep = TableUpkeep(locks, dead_min=0, vacuumed_within_s=0)
        vacuumed = upkeep.run_if_due(now=100.0)
        self.assertEqual(sorted(vacuumed), ["mqtt_connection", "mqtt_device"])
        after = self._last_vacuum(locks)
        for table in vacuumed:
            self.assertIsNotNone(after[table])
            self.assertNotEqual(after[table], before.get(table))
        # Not before the next check; at it, the VACUUM just run is recent enough.
        upkeep.vacuumed_within_s = 3600
        self.assertEqual(upkeep.run_if_due(now=100.0 + CHECK_EVERY_S - 1), [])
        self.assertEqual(upkeep.run_if_due(now=100.0 + CHECK_EVERY_S), [])
        self.assertEqual(self._last_vacuum(locks), after)

    def test_without_its_connection_the_upkeep_does_nothing(self):
        locks = RunnerLocks(self.env.cr.dbname, "test-node")  # never opened
        self.assertEqual(TableUpkeep(locks, dead_min=0).run_if_due(now=0.0), [])
