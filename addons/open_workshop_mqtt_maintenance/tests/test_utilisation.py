# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Utilisation: working hours / opening hours per machine and week, the
opening hours from the company's working calendar."""

from datetime import datetime, time, timedelta

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import MaintenanceCase


@tagged("post_install", "-at_install")
class TestUtilisation(MaintenanceCase):
    def worked(self, device, start, hours):
        end = start + timedelta(hours=hours)
        self.make_session(
            device,
            start.timestamp(),
            start_time=start,
            end_time=end,
            end_ts=end.timestamp(),
            working_duration_s=hours * 3600.0,
            state="closed",
        )

    def test_working_hours_against_opening_hours_per_week(self):
        calendar = self.env.company.resource_calendar_id
        calendar.tz = "UTC"
        self.manager.tz = "UTC"
        opening = sum(
            (a.hour_to - a.hour_from)
            for a in calendar.attendance_ids
            if not a.display_type and a.day_period != "lunch"
        )
        today = datetime.now().date()
        monday = datetime.combine(today - timedelta(days=today.weekday()), time(9))
        self.worked(self.device, monday, 4.0)
        self.worked(self.device, monday - timedelta(weeks=1), 10.0)
        self.worked(self.other, monday - timedelta(weeks=1), 1.0)
        action = (
            self.env["mqtt.utilisation"].with_user(self.manager).action_open(weeks=2)
        )
        rows = (
            self.env["mqtt.utilisation"]
            .with_user(self.manager)
            .search(action["domain"])
        )
        mine = {(r.device_id, r.week): r for r in rows}
        this_week = monday.date()
        last_week = this_week - timedelta(weeks=1)
        self.assertEqual(len(rows), 2 * self.env["mqtt.device"].search_count([]))
        row = mine[self.device, this_week]
        self.assertAlmostEqual(row.opening_hours, opening)
        self.assertAlmostEqual(row.working_hours, 4.0)
        self.assertAlmostEqual(row.utilisation, 4.0 / opening)
        self.assertAlmostEqual(mine[self.device, last_week].utilisation, 10.0 / opening)
        self.assertAlmostEqual(mine[self.other, last_week].utilisation, 1.0 / opening)
        self.assertEqual(mine[self.other, this_week].working_hours, 0.0)
        # The busiest first within a week.
        ordered = rows.filtered(lambda r: r.week == last_week)
        self.assertEqual(ordered[0].device_id, self.device)
        # Opened again, the user's old rows go.
        self.env["mqtt.utilisation"].with_user(self.manager).action_open(weeks=1)
        self.assertFalse(rows.exists())

    def test_each_sees_the_machines_they_may(self):
        company_b = self.env["res.company"].create({"name": "Other workshop"})
        manager_b = new_test_user(
            self.env,
            login="owm_util_b",
            groups="base.group_user,open_workshop_mqtt.group_manager",
            company_id=company_b.id,
            company_ids=[(6, 0, company_b.ids)],
        )
        self.device.company_id = self.env.company
        self.other.company_id = self.env.company
        action = self.env["mqtt.utilisation"].with_user(manager_b).action_open(weeks=1)
        rows = (
            self.env["mqtt.utilisation"].with_user(manager_b).search(action["domain"])
        )
        self.assertFalse(rows.sudo().device_id & (self.device | self.other))
        # Nor their rows another's.
        self.env["mqtt.utilisation"].with_user(self.manager).action_open(weeks=1)
        self.assertFalse(
            self.env["mqtt.utilisation"]
            .with_user(manager_b)
            .search([("create_uid", "=", self.manager.id)])
        )
        outsider = new_test_user(
            self.env, login="owm_util_out", groups="base.group_user"
        )
        with self.assertRaises(AccessError):
            self.env["mqtt.utilisation"].with_user(outsider).action_open()
