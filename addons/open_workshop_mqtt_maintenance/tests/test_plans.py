# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Maintenance plans by use: every N working hours and/or every M days,
whichever comes first; one open request per due plan; a done request
re-bases the plan.  Two checks racing: test_plan_race.py."""

from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from .common import MaintenanceCase


@tagged("post_install", "-at_install")
class TestPlans(MaintenanceCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.team = cls.env["maintenance.team"].create({"name": "Wood shop"})
        cls.done = cls.env["maintenance.stage"].search([("done", "=", True)], limit=1)

    def plan(self, **vals):
        values = {"name": "Change the blade", "equipment_id": self.equipment.id}
        values.update(vals)
        return self.env["mqtt.maintenance.plan"].with_user(self.manager).create(values)

    def finish(self, request):
        """The technician marks it done (the equipment's, so theirs)."""
        request.with_user(self.manager).write({"stage_id": self.done.id})

    def test_by_working_hours_at_the_close_of_the_session_that_crosses(self):
        plan = self.plan(
            interval_working_hours=0.5,
            maintenance_team_id=self.team.id,
            note="<p>Check the belt.</p>",
        )
        self.work_hours(0.3)
        self.assertEqual(plan.state, "ok")
        self.assertAlmostEqual(plan.remaining_working_hours, 0.2, delta=0.01)
        self.assertFalse(plan.request_ids)
        self.work_hours(0.3)  # crosses 0.5 h: the hook opens the request
        request = plan.request_ids
        self.assertEqual(len(request), 1)
        self.assertEqual(plan.state, "requested")
        self.assertEqual(plan.open_request_id, request)
        self.assertEqual(request.equipment_id, self.equipment)
        self.assertEqual(request.maintenance_type, "preventive")
        self.assertEqual(request.maintenance_team_id, self.team)
        self.assertEqual(request.user_id, self.manager)
        self.assertIn("0.6 of 0.5 working hours", request.description)
        # A paragraph of the request's HTML, not escaped markup shown as text.
        self.assertIn("<p>Check the belt.</p><p>Due by use: ", str(request.description))
        self.assertNotIn("&lt;p&gt;", str(request.description))
        # More work, more checks: still the one request.
        self.work_hours(0.3)
        plan._check_due()
        self.env["mqtt.maintenance.plan"]._cron_check_due()
        self.assertEqual(len(plan.request_ids), 1)

    def test_by_days_through_the_cron(self):
        today = fields.Date.context_today(self.env["mqtt.maintenance.plan"])
        late = self.plan(interval_days=7, base_date=today - timedelta(days=7))
        fresh = self.plan(name="Oil the table", interval_days=7)
        self.assertEqual(late.due_date, today)
        self.assertEqual(late.state, "due")
        self.assertEqual(fresh.state, "ok")
        self.env["mqtt.maintenance.plan"]._cron_check_due()
        self.assertEqual(len(late.request_ids), 1)
        self.assertIn("7 of 7 days", late.request_ids.description)
        self.assertFalse(fresh.request_ids)

    def test_whichever_comes_first(self):
        today = fields.Date.context_today(self.env["mqtt.maintenance.plan"])
        by_days = self.plan(
            interval_working_hours=100, interval_days=7, base_date=today - timedelta(9)
        )
        by_hours = self.plan(name="Belt", interval_working_hours=0.2, interval_days=30)
        self.work_hours(0.25)
        self.assertEqual(len(by_hours.request_ids), 1)
        self.assertEqual(len(by_days.request_ids), 1)  # checked at the close too
        self.assertIn("9 of 7 days", by_days.request_ids.description)

    def test_a_done_request_rebases_the_plan_and_the_meters_since(self):
        plan = self.plan(interval_working_hours=0.2)
        self.work_hours(0.25)
        first = plan.request_ids
        lifetime = self.equipment.mqtt_working_hours
        self.assertAlmostEqual(self.equipment.mqtt_working_hours_since, lifetime)
        self.finish(first)
        self.assertEqual(plan.state, "ok")
        self.assertAlmostEqual(plan.base_working_hours, lifetime)
        self.assertEqual(plan.base_date, first.close_date)
        self.assertEqual(self.equipment.mqtt_last_preventive_date, first.close_date)
        self.assertEqual(self.equipment.mqtt_working_hours_since, 0.0)
        self.assertAlmostEqual(self.equipment.mqtt_working_hours, lifetime)
        # It counts again from there: the next 0.2 h open the next request.
        self.work_hours(0.1)
        self.assertEqual(plan.request_ids, first)
        self.work_hours(0.15)
        self.assertEqual(len(plan.request_ids), 2)
        self.assertEqual(plan.open_request_id, plan.request_ids - first)

    def test_a_plan_states_its_interval(self):
        with self.assertRaises(ValidationError):
            self.plan()
        with self.assertRaises(ValidationError):
            self.plan(interval_working_hours=-1)

    def test_nobody_moves_a_plan_or_fakes_its_request_by_hand(self):
        plan = self.plan(interval_working_hours=10)
        with self.assertRaises(UserError):
            plan.with_user(self.manager).write({"base_working_hours": 100.0})
        with self.assertRaises(AccessError):
            self.env["maintenance.request"].with_user(self.manager).create(
                {"name": "Fake", "mqtt_plan_id": plan.id}
            )
        ordinary = (
            self.env["maintenance.request"]
            .with_user(self.manager)
            .create({"name": "Wobbly leg", "equipment_id": self.equipment.id})
        )
        with self.assertRaises(AccessError):
            ordinary.write({"mqtt_plan_id": plan.id})
        # Staff read the plans, managers keep them.
        self.assertEqual(plan.with_user(self.user).state, "ok")
        with self.assertRaises(AccessError):
            plan.with_user(self.user).write({"interval_working_hours": 20})
        with self.assertRaises(AccessError):
            plan.with_user(self.user).action_check_now()

    def test_check_now_opens_and_shows_it(self):
        plan = self.plan(interval_working_hours=0.1)
        self.env.cr.execute(
            "UPDATE maintenance_equipment SET mqtt_working_hours = 5 WHERE id = %s",
            (self.equipment.id,),
        )
        self.env.invalidate_all()
        action = plan.with_user(self.manager).action_check_now()
        self.assertEqual(action["res_model"], "maintenance.request")
        self.assertEqual(action["domain"], [("id", "in", plan.request_ids.ids)])
        # Staff see the requests of the plans.
        self.assertEqual(
            self.env["maintenance.request"]
            .with_user(self.user)
            .search([("mqtt_plan_id", "=", plan.id)]),
            plan.request_ids,
        )
        self.assertTrue(plan.with_user(self.manager).action_check_now())
