# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Two checks of one due plan at once open one request.

Real transactions on real connections, as two prefork workers or two
nodes on one database have: the runner's hook in one, the cron in another.
Committed data, removed again at the end."""

import threading
from datetime import timedelta

from odoo import SUPERUSER_ID, api, fields
from odoo.modules.registry import Registry
from odoo.tests import BaseCase, get_db_name, tagged

CHECKERS = 4
ROUNDS = 8
WAIT_S = 30


@tagged("post_install", "-at_install")
class TestTwoChecksOpenOneRequest(BaseCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry = Registry(get_db_name())
        with cls.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            connection = env["mqtt.connection"].create(
                {"name": "Race broker", "host": "127.0.0.1", "auto_start": False}
            )
            device = env["mqtt.device"].create(
                {
                    "name": "Race saw",
                    "connection_id": connection.id,
                    "topic_prefix": "shellypmminig3-0000000ace01",
                }
            )
            equipment = env["maintenance.equipment"].create(
                {"name": "Race saw", "mqtt_device_id": device.id}
            )
            plan = env["mqtt.maintenance.plan"].create(
                {
                    "name": "Race plan",
                    "equipment_id": equipment.id,
                    "interval_working_hours": 0.5,
                }
            )
            cls.ids = (connection.id, device.id, equipment.id, plan.id)
        cls.addClassCleanup(cls.remove)

    @classmethod
    def remove(cls):
        connection_id, device_id, equipment_id, plan_id = cls.ids
        with cls.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["maintenance.request"].search([("mqtt_plan_id", "=", plan_id)]).unlink()
            env["mqtt.maintenance.plan"].browse(plan_id).unlink()
            env["maintenance.equipment"].browse(equipment_id).unlink()
            env["mqtt.device"].browse(device_id).unlink()
            env["mqtt.connection"].browse(connection_id).unlink()

    def env_of(self, cr):
        return api.Environment(cr, SUPERUSER_ID, {})

    def make_due(self):
        """One more working hour on the meter: the plan is due again."""
        with self.registry.cursor() as cr:
            cr.execute(
                "UPDATE maintenance_equipment SET mqtt_working_hours = "
                "COALESCE(mqtt_working_hours, 0) + 1 WHERE id = %s",
                (self.ids[2],),
            )

    def open_requests(self):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT id FROM maintenance_request WHERE mqtt_plan_id = %s "
                "AND mqtt_plan_open",
                (self.ids[3],),
            )
            return [row[0] for row in cr.fetchall()]

    def finish(self, request_ids):
        with self.registry.cursor() as cr:
            env = self.env_of(cr)
            done = env["maintenance.stage"].search([("done", "=", True)], limit=1)
            env["maintenance.request"].browse(request_ids).write({"stage_id": done.id})

    def check(self, start, opened, errors, before=None):
        """One checker in its own transaction (a worker, a node)."""
        try:
            with self.registry.cursor() as cr:
                env = self.env_of(cr)
                if before:
                    before(cr)
                start.wait(WAIT_S)
                plan = env["mqtt.maintenance.plan"].browse(self.ids[3])
                opened.extend(plan._check_due().ids)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    def race(self, checkers):
        start = threading.Barrier(len(checkers))
        opened, errors = [], []
        threads = [
            threading.Thread(target=self.check, args=(start, opened, errors, before))
            for before in checkers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S)
        self.assertFalse([t for t in threads if t.is_alive()], "a checker hangs")
        self.assertEqual(errors, [])
        return opened

    def test_checks_at_once_open_one(self):
        for round_ in range(ROUNDS):
            self.make_due()
            opened = self.race([None] * CHECKERS)
            open_now = self.open_requests()
            self.assertEqual(len(open_now), 1, f"round {round_}: {open_now}")
            self.assertEqual(opened, open_now, f"round {round_}")
            self.finish(open_now)
            self.assertEqual(self.open_requests(), [])

    def test_a_check_that_began_before_the_other_committed_opens_none(self):
        """The check that does not see the other's request (its snapshot is
        older) is refused by the database, quietly; it opens none."""
        self.make_due()
        began = threading.Event()
        committed = threading.Event()

        def early(cr):
            cr.execute("SELECT count(*) FROM maintenance_request")  # its snapshot
            began.set()
            committed.wait(WAIT_S)

        late = []
        thread_errors = []
        early_start = threading.Barrier(1)
        early_thread = threading.Thread(
            target=self.check, args=(early_start, late, thread_errors, early)
        )
        early_thread.start()
        self.assertTrue(began.wait(WAIT_S))
        first = self.race([None])
        committed.set()
        early_thread.join(WAIT_S)
        self.assertFalse(early_thread.is_alive())
        self.assertEqual(thread_errors, [])
        self.assertEqual(len(first), 1)
        self.assertEqual(late, [])
        self.assertEqual(self.open_requests(), first)
        self.finish(first)

    def test_the_days_cron_and_a_close_at_once(self):
        self.write_plan(
            {"interval_days": 1, "base_date": fields.Date.today() - timedelta(days=1)}
        )
        try:
            opened = self.race([None, None])
            self.assertEqual(len(opened), 1)
            self.assertEqual(self.open_requests(), opened)
            self.finish(opened)
        finally:
            self.write_plan({"interval_days": 0})

    def write_plan(self, values):
        with self.registry.cursor() as cr:
            env = self.env_of(cr)  # (held: the commit flushes the live ones)
            env["mqtt.maintenance.plan"].browse(self.ids[3]).sudo().write(values)
