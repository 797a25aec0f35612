# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A workshop manager of company B against company A's machines, and anyone
against what the guards and plans derive: each attack of the hostile review
(2026-12-06) is refused, or changes nothing."""

from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import MaintenanceCase


@tagged("post_install", "-at_install")
class TestAnotherCompanysMachines(MaintenanceCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_b = cls.env["res.company"].create({"name": "Workshop B"})
        cls.manager_b = new_test_user(
            cls.env,
            login="owm_maint_manager_b",
            groups="base.group_user,open_workshop_mqtt.group_manager,"
            "maintenance.group_equipment_manager",
            company_id=cls.company_b.id,
            company_ids=[(6, 0, cls.company_b.ids)],
        )
        cls.device.company_id = cls.env.company
        connection_b = cls.env["mqtt.connection"].create(
            {
                "name": "B's broker",
                "host": "127.0.0.1",
                "auto_start": False,
                "company_id": cls.company_b.id,
            }
        )
        cls.device_b = cls.env["mqtt.device"].create(
            {
                "name": "B's saw",
                "connection_id": connection_b.id,
                "company_id": cls.company_b.id,
                "topic_prefix": "shellypmminig3-0000000000bb",
            }
        )

    def test_a_guards_alert_is_the_guards(self):
        activity = self.equipment.activity_schedule(
            "mail.mail_activity_data_todo", summary="A: replace the tube"
        )
        Guard = self.env["mqtt.maintenance.guard"].with_user(self.manager_b)
        for values in ({"activity_id": activity.id}, {"alert_active": True}):
            with self.assertRaises(UserError):
                Guard.create(dict(values, device_id=self.device_b.id, kind="left_on"))
        guard = Guard.create({"device_id": self.device_b.id, "kind": "left_on"})
        with self.assertRaises(UserError):
            guard.write({"activity_id": activity.id, "alert_active": True})
        # Even set (as superuser), ending the alert closes no other activity.
        guard.sudo().write({"activity_id": activity.id, "alert_active": True})
        guard.sudo()._resolve_alert()
        self.assertTrue(activity.exists())

    def test_a_preview_reads_no_other_companys_history(self):
        Guard = self.env["mqtt.maintenance.guard"].with_user(self.manager_b)
        self.play()
        try:
            result = Guard.onchange(
                {"device_id": self.device.id, "kind": "long_session"},
                ["device_id"],
                {"preview_text": {}, "device_id": {"fields": {"display_name": {}}}},
            )
        except AccessError:
            return
        self.assertFalse(result["value"].get("preview_text"), result)
        self.assertNotIn(self.device.name, repr(result))

    def test_a_plan_counts_from_what_is_true(self):
        self.work_hours(0.3)
        Plan = self.env["mqtt.maintenance.plan"].with_user(self.manager)
        values = {"name": "Belt", "equipment_id": self.equipment.id, "interval_days": 9}
        with self.assertRaises(ValidationError):
            Plan.create(dict(values, base_working_hours=1_000_000.0))
        tomorrow = fields.Date.context_today(Plan) + timedelta(days=1)
        with self.assertRaises(ValidationError):
            Plan.create(dict(values, base_date=tomorrow))
        plan = Plan.create(dict(values, base_working_hours=0.1))
        other = self.env["maintenance.equipment"].create({"name": "Other"})
        with self.assertRaises(UserError):
            plan.write({"equipment_id": other.id})

    def test_a_done_request_stays_done(self):
        plan = self.env["mqtt.maintenance.plan"].create(
            {
                "name": "Lens",
                "equipment_id": self.equipment.id,
                "interval_days": 1,
                "base_date": fields.Date.today() - timedelta(days=2),
            }
        )
        request = plan._check_due()
        done = self.env["maintenance.stage"].search([("done", "=", True)], limit=1)
        new = self.env["maintenance.stage"].search([("done", "=", False)], limit=1)
        request.with_user(self.manager).write({"stage_id": done.id})
        maintainer = new_test_user(
            self.env,
            login="owm_maintainer_a",
            groups="base.group_user,maintenance.group_equipment_manager",
        )
        with self.assertRaises(UserError):
            request.with_user(maintainer).write({"stage_id": new.id})

    def test_utilisation_rows_are_made_not_written(self):
        Rows = self.env["mqtt.utilisation"].with_user(self.manager_b)
        with self.assertRaises(AccessError):
            Rows.create({"device_id": self.device.id})
        action = Rows.action_open(weeks=10_000)
        rows = Rows.search(action["domain"])
        self.assertLessEqual(len(rows), 104 * len(rows.sudo().device_id))
        with self.assertRaises(AccessError):
            rows[:1].write({"working_hours": 99.0})
        self.assertNotIn(self.device, rows.sudo().device_id)

    def test_session_edits_leave_the_meters_right(self):
        self.play()
        session = self.sessions()
        for values in (
            {"working_duration_s": 360_000.0},
            {"device_id": self.device_b.id},
        ):
            with self.assertRaises(UserError):
                session.with_user(self.manager).write(values)
        with self.assertRaises(UserError):
            session.with_user(self.manager).unlink()
        self.assertEqual(self.equipment.mqtt_session_count, 1)
