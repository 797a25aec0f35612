# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo.tests import TransactionCase, tagged

from ...models.hot_rows import FILLFACTOR, REWRITTEN, keep_updates_on_page


@tagged("post_install", "-at_install")
class TestHotRows(TransactionCase):
    def _options(self, table):
        self.env.cr.execute(
            "SELECT reloptions FROM pg_class WHERE oid = to_regclass(%s)", (table,)
        )
        return self.env.cr.fetchone()[0] or []

    def test_the_rows_the_runner_rewrites_leave_room_on_their_page(self):
        for table in REWRITTEN:
            self.assertIn(f"fillfactor={FILLFACTOR}", self._options(table), table)

    def test_a_table_that_lost_its_fill_factor_gets_it_back_once(self):
        # An administrator's reset, or a table restored from a dump without it.
        self.env.cr.execute("ALTER TABLE mqtt_device RESET (fillfactor)")
        self.assertEqual(self._options("mqtt_device"), [])
        keep_updates_on_page(self.env.cr, "mqtt_device")
        keep_updates_on_page(self.env.cr, "mqtt_device")
        self.assertEqual(self._options("mqtt_device"), [f"fillfactor={FILLFACTOR}"])
        # A table that is not there (yet) is left alone, not an error.
        keep_updates_on_page(self.env.cr, "no_such_table")

    def test_an_administrators_own_fill_factor_stays(self):
        self.env.cr.execute("ALTER TABLE mqtt_connection SET (fillfactor = 50)")
        keep_updates_on_page(self.env.cr, "mqtt_connection")
        self.assertEqual(self._options("mqtt_connection"), ["fillfactor=50"])
