# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Guards: each opens one alert while its condition holds (an activity for
the technician, a mark on the board) and resolves it when the condition
ends; the preview says how often it would have fired in the last 30 days."""

import time
from datetime import datetime, timedelta

from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import MaintenanceCase


@tagged("post_install", "-at_install")
class TestGuards(MaintenanceCase):
    def guard(self, kind, minutes=30, **vals):
        values = {
            "device_id": self.device.id,
            "kind": kind,
            "threshold_minutes": minutes,
        }
        values.update(vals)
        return self.env["mqtt.maintenance.guard"].with_user(self.manager).create(values)

    def activities(self):
        return self.env["mail.activity"].search(
            [
                ("res_model", "=", "maintenance.equipment"),
                ("res_id", "=", self.equipment.id),
            ]
        )

    def test_left_on_opens_once_and_resolves_when_switched_off(self):
        guard = self.guard("left_on", 30)
        # Switched on, idle: standby.
        self.play([(0, 50.0), (5, 50.0), (10, 50.0)])
        self.assertEqual(self.device.current_state, "standby")
        since = self.device.state_since
        self.assertTrue(since)
        guard._watch(since + timedelta(minutes=29))
        self.assertFalse(guard.alert_active)
        for minutes in (31, 32, 45):
            guard._watch(since + timedelta(minutes=minutes))
        self.assertTrue(guard.alert_active)
        (activity,) = self.activities()
        self.assertEqual(activity.user_id, self.manager)
        self.assertIn(self.device.name, activity.summary)
        self.assertEqual(guard.activity_id, activity)
        self.assertEqual(self.device.guard_alert, guard.name)
        self.assertEqual(self.equipment.mqtt_guard_alert, guard.name)
        # Switched off: the alert ends, its activity is done.
        self.play([(20, 1.0), (30, 1.0), (40, 1.0)])
        self.assertEqual(self.device.current_state, "idle")
        guard._watch(since + timedelta(minutes=50))
        self.assertFalse(guard.alert_active)
        self.assertFalse(self.activities())
        self.assertFalse(self.device.guard_alert)
        done = self.env["mail.message"].search(
            [
                ("model", "=", "maintenance.equipment"),
                ("res_id", "=", self.equipment.id),
            ]
        )
        self.assertTrue(any("ended by itself" in (m.body or "") for m in done))

    def test_a_long_session(self):
        guard = self.guard("long_session", 120)
        self.play([(0, 500.0), (5, 500.0), (10, 500.0)])
        start = self.device.running_since
        guard._watch(start + timedelta(minutes=119))
        self.assertFalse(guard.alert_active)
        guard._watch(start + timedelta(minutes=121))
        self.assertTrue(guard.alert_active)
        self.device.with_user(self.user).action_stop_session()
        guard._watch(start + timedelta(minutes=122))
        self.assertFalse(guard.alert_active)

    def test_a_silent_meter_while_its_broker_is_up_and_it_is_polled(self):
        guard = self.guard("silent", 10)
        self.play([(0, 1.0)])
        heard = self.device.last_message_time
        later = heard + timedelta(minutes=11)
        self.connection.sudo().write({"state": "connected"})
        self.device.sudo().write({"poll_interval_s": 0})
        guard._watch(later)
        self.assertFalse(guard.alert_active, "not polled: silence is normal")
        self.device.sudo().write({"poll_interval_s": 5})
        self.connection.sudo().write({"state": "connecting"})
        guard._watch(later)
        self.assertFalse(guard.alert_active, "its broker is down: not the meter")
        self.connection.sudo().write({"state": "connected"})
        guard._watch(heard + timedelta(minutes=9))
        self.assertFalse(guard.alert_active)
        guard._watch(later)
        self.assertTrue(guard.alert_active)
        self.play([(60, 1.0)])  # it speaks again
        guard._watch(self.device.last_message_time + timedelta(minutes=1))
        self.assertFalse(guard.alert_active)

    def test_used_outside_working_hours(self):
        calendar = self.env.company.resource_calendar_id
        calendar.tz = "UTC"
        self.assertTrue(calendar.attendance_ids)
        guard = self.guard("off_hours", 15)
        # A Saturday (no attendance in the standard calendar), 10:00 UTC.
        saturday = datetime(2026, 11, 28, 10, 0)
        self.assertEqual(saturday.weekday(), 5)
        session = self.make_session(self.device, saturday.timestamp())
        session.start_time = saturday
        self.device.sudo().running_session_id = session
        guard._watch(saturday + timedelta(minutes=14))
        self.assertFalse(guard.alert_active)
        guard._watch(saturday + timedelta(minutes=16))
        self.assertTrue(guard.alert_active)
        # In working hours (a Monday at 10:00) it does not fire.
        monday = datetime(2026, 11, 30, 10, 0)
        session.start_time = monday - timedelta(hours=1)
        guard._watch(monday)
        self.assertFalse(guard.alert_active)
        # Running into the evening: from the end of the working day.
        guard._watch(datetime(2026, 11, 30, 17, 10))
        self.assertFalse(guard.alert_active)
        guard._watch(datetime(2026, 11, 30, 17, 20))
        self.assertTrue(guard.alert_active)

    def test_an_archived_guard_ends_its_alert(self):
        guard = self.guard("long_session", 1)
        self.play([(0, 500.0), (5, 500.0)])
        guard._watch(self.device.running_since + timedelta(minutes=5))
        self.assertTrue(self.activities())
        guard.with_user(self.manager).write({"active": False})
        self.assertFalse(guard.alert_active)
        self.assertFalse(self.activities())

    def test_the_cron_watches_every_guard(self):
        guard = self.guard("long_session", 1)
        self.play([(0, 500.0), (5, 500.0)])  # (device time: long ago)
        self.env["mqtt.maintenance.guard"]._cron_watch()
        self.assertTrue(guard.alert_active)

    def test_preview_over_the_last_30_days(self):
        now = datetime.now().replace(microsecond=0)
        for start, hours in (
            (now - timedelta(days=3), 2),
            (now - timedelta(days=2), 5),
        ):
            self.make_session(
                self.device,
                start.timestamp(),
                start_time=start,
                end_time=start + timedelta(hours=hours),
                end_ts=(start + timedelta(hours=hours)).timestamp(),
                state="closed",
            )
        guard = self.guard("long_session", 60)
        self.assertEqual(
            guard.preview_text,
            "It would have fired 2 times in the last 30 days (the longest for 300 "
            "minutes).",
        )
        guard.threshold_minutes = 600
        self.assertEqual(
            guard.preview_text, "It would not have fired in the last 30 days."
        )
        # Left on, from the power history: 40 minutes in standby two days ago.
        self.t = time.time() - 2 * 86400
        self.play([(n * 15, 50.0) for n in range(161)] + [(2416, 1.0), (2432, 1.0)])
        left_on = self.guard("left_on", 30)
        self.assertEqual(
            left_on.preview_text,
            "It would have fired once in the last 30 days (for 40 minutes).",
        )

    def test_staff_see_guards_managers_keep_them(self):
        guard = self.guard("left_on")
        self.assertEqual(guard.with_user(self.user).kind, "left_on")
        with self.assertRaises(AccessError):
            guard.with_user(self.user).write({"threshold_minutes": 5})
        with self.assertRaises(AccessError):
            guard.with_user(self.user).action_watch_now()
        self.assertTrue(guard.with_user(self.manager).action_watch_now())
