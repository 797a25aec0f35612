# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).

from psycopg2 import IntegrityError

from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..common import WorkshopCase

T0 = 1_780_000_000.0


@tagged("post_install", "-at_install")
class TestSession(WorkshopCase):
    def test_computed_durations_and_energy(self):
        session = self.make_session(
            self.device,
            T0,
            end_ts=T0 + 5400,
            state="closed",
            end_reason="power_drop",
            standby_duration_s=1800.0,
            working_duration_s=3600.0,
            energy_wh=1500.0,
        )
        self.assertEqual(session.total_duration_s, 5400.0)
        self.assertAlmostEqual(session.total_hours, 1.5)
        self.assertAlmostEqual(session.working_hours, 1.0)
        self.assertAlmostEqual(session.standby_hours, 0.5)
        self.assertAlmostEqual(session.working_ratio, 3600 / 5400)
        self.assertAlmostEqual(session.energy_kwh, 1.5)
        self.assertAlmostEqual(session.avg_power_w, 1000.0)
        self.assertEqual(session.connection_id, self.connection)
        self.assertEqual(session.machine_type, "saw")
        self.assertIn("Band saw", session.with_context(tz="Europe/Berlin").display_name)
        # The start in the reader's time zone: 1_780_000_000 is 20:26 UTC.
        self.assertIn(" 22:26", session.with_context(tz="Europe/Berlin").display_name)
        self.assertIn(" 20:26", session.with_context(tz="UTC").display_name)

    def test_zero_length_session_has_no_division_by_zero(self):
        session = self.make_session(self.device, T0, end_ts=T0, state="closed")
        self.assertEqual(session.working_ratio, 0.0)
        self.assertEqual(session.avg_power_w, 0.0)

    def test_database_allows_one_running_session_per_machine(self):
        self.make_session(self.device, T0)
        with (
            mute_logger("odoo.sql_db"),
            self.assertRaises(IntegrityError),
            self.cr.savepoint(),
        ):
            self.make_session(self.device, T0 + 10)
        # A closed one beside the running one is fine.
        closed = self.make_session(
            self.device, T0 - 100, end_ts=T0 - 50, state="closed"
        )
        self.assertEqual(closed.state, "closed")

    def test_database_refuses_a_duplicate_session_start(self):
        self.make_session(self.device, T0, end_ts=T0 + 60, state="closed")
        with (
            mute_logger("odoo.sql_db"),
            self.assertRaises(IntegrityError),
            self.cr.savepoint(),
        ):
            self.make_session(self.device, T0, end_ts=T0 + 90, state="closed")
        other = self.make_device("Other", "shellypmminig3-other")
        self.assertTrue(self.make_session(other, T0))

    def test_analysis_groups_by_hour_and_weekday(self):
        for offset, working in ((0, 3600.0), (86400, 1800.0)):
            self.make_session(
                self.device,
                T0 + offset,
                end_ts=T0 + offset + working,
                state="closed",
                working_duration_s=working,
            )
        groups = self.env["mqtt.session"]._read_group(
            [("device_id", "=", self.device.id)],
            ["start_time:day_of_week"],
            ["working_hours:sum"],
        )
        self.assertEqual(sorted(hours for _day, hours in groups), [0.5, 1.0])

    def test_the_search_groups_by_weekday_and_hour_in_the_companys_zone(self):
        """The web client groups a date by year to day only: the search's
        Weekday and Hour of Day group by stored fields, in the company's
        time zone."""
        self.env.company.partner_id.tz = "Europe/Berlin"
        # Monday 16 March 2026, 23:30 UTC: Tuesday 00:30 in Berlin.
        start = 1_773_703_800.0
        late = self.make_session(self.device, start, end_ts=start + 60, state="closed")
        self.assertEqual((late.start_weekday, late.start_hour), ("1", 0))
        self.make_session(self.device, start + 3 * 3600)
        groups = self.env["mqtt.session"]._read_group(
            [("device_id", "=", self.device.id)], ["start_hour"], ["__count"]
        )
        self.assertEqual(sorted(groups), [(0, 1), (3, 1)])
        # The company moves: its sessions follow.
        self.env.company.partner_id.tz = "UTC"
        self.assertEqual((late.start_weekday, late.start_hour), ("0", 23))
        arch = self.env.ref("open_workshop_mqtt.mqtt_session_view_search").arch
        self.assertIn("'group_by': 'start_weekday'", arch)
        self.assertIn("'group_by': 'start_hour'", arch)

    def test_a_session_is_the_machines_record(self):
        session = self.make_session(self.device, T0, end_ts=T0 + 90, state="closed")
        for values in (
            {"working_duration_s": 1.0},
            {"end_ts": T0 + 1},
            {"state": "running"},
            {"device_id": self.make_device("Other", "shellypmminig3-0th3r").id},
        ):
            with self.assertRaises(UserError):
                session.with_user(self.manager).write(values)
        with self.assertRaises(UserError):
            session.with_user(self.manager).unlink()
        self.assertEqual(session.working_duration_s, 0.0)
