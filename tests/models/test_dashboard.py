# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The usage dashboard: mqtt.dashboard.get_data and the client action (tour).

The clock is "Wednesday 18 March 2026, 10:00 in Berlin" (09:00 UTC; Berlin is
UTC+1 until the 29th): ``_now`` is patched, the sessions are placed around it.
"""

import json
from datetime import datetime
from unittest.mock import patch

import pytz

from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, new_test_user, tagged

from ...services.engine.timebase import to_utc
from ..common import WorkshopCase

BERLIN = "Europe/Berlin"
NOW_UTC = datetime(2026, 3, 18, 9, 0)  # Wednesday 10:00 in Berlin


def local_ts(stamp, tz=BERLIN):
    """'2026-03-18 08:00' wall time in ``tz`` -> Unix seconds."""
    naive = datetime.strptime(stamp, "%Y-%m-%d %H:%M")
    return pytz.timezone(tz).localize(naive).timestamp()


def freeze_dashboard(case, now_utc):
    case.startPatcher(
        patch.object(type(case.env["mqtt.dashboard"]), "_now", return_value=now_utc)
    )


def seed_session(env, device, start, minutes, working_s, standby_s, energy_wh, **vals):
    """A closed session starting at ``start`` (Berlin wall time)."""
    start_ts = local_ts(start)
    end_ts = start_ts + minutes * 60
    values = {
        "device_id": device.id,
        "start_ts": start_ts,
        "start_time": to_utc(start_ts),
        "end_ts": end_ts,
        "end_time": to_utc(end_ts),
        "last_update_ts": end_ts,
        "state": "closed",
        "working_duration_s": working_s,
        "standby_duration_s": standby_s,
        "energy_wh": energy_wh,
        "end_reason": "power_drop",
    }
    values.update(vals)
    return env["mqtt.session"].create(values)


@tagged("post_install", "-at_install")
class TestDashboard(WorkshopCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Only this test's sessions (demo data may hold some).
        cls.env["mqtt.session"].search([]).unlink()
        cls.saw = cls.device
        cls.laser = cls.make_device("Laser", "laser-1", machine_type="laser")
        cls.printer = cls.make_device("Printer", "printer-1", machine_type="printer")

    def setUp(self):
        super().setUp()
        freeze_dashboard(self, NOW_UTC)

    def get_data(self, period="month", user=None, tz=BERLIN, **kwargs):
        dashboard = self.env["mqtt.dashboard"].with_user(user or self.user)
        return dashboard.with_context(tz=tz).get_data(period, **kwargs)

    def seed_week(self):
        """Today (Wed), yesterday (Tue), this month, this year, last year."""
        seed_session(self.env, self.saw, "2026-03-18 08:00", 90, 3600, 1800, 1500)
        seed_session(
            self.env,
            self.laser,
            "2026-03-17 14:00",
            120,
            5400,
            1800,
            4000,
            end_reason="timeout",
        )
        seed_session(
            self.env,
            self.saw,
            "2026-03-02 10:00",
            30,
            900,
            900,
            200,
            end_reason="manual",
        )
        seed_session(
            self.env,
            self.printer,
            "2026-01-10 09:00",
            120,
            7200,
            0,
            300,
            end_reason="offline",
        )
        # Last year, 23:30 in Berlin on New Year's Eve (22:30 UTC).
        seed_session(self.env, self.printer, "2025-12-31 23:30", 20, 1200, 0, 50)
        # Running since 09:00 today, updated up to 09:10 (all working).
        start = local_ts("2026-03-18 09:00")
        self.make_session(
            self.laser,
            start,
            last_update_ts=start + 600,
            working_duration_s=600,
            energy_wh=100,
        )

    # -- KPIs per period ------------------------------------------------------
    def test_kpis_per_period(self):
        self.seed_week()
        expected = {
            # period: sessions, working s, standby s, energy Wh, busiest
            "today": (2, 4200, 1800, 1600, "Band saw"),
            "week": (3, 9600, 3600, 5600, "Laser"),
            "month": (4, 10500, 4500, 5800, "Laser"),
            "year": (5, 17700, 4500, 6100, "Printer"),
        }
        for period, (count, working, standby, energy, busiest) in expected.items():
            with self.subTest(period=period):
                kpis = self.get_data(period)["kpis"]
                self.assertEqual(kpis["sessions"], count)
                self.assertEqual(kpis["running"], 1)
                self.assertAlmostEqual(kpis["working_h"], working / 3600)
                self.assertAlmostEqual(kpis["standby_h"], standby / 3600)
                self.assertAlmostEqual(
                    kpis["working_share"], 100 * working / (working + standby)
                )
                self.assertAlmostEqual(kpis["energy_kwh"], energy / 1000)
                self.assertEqual(kpis["busiest_machine"]["name"], busiest)
        week = self.get_data("week")["kpis"]
        self.assertAlmostEqual(week["working_share"], 72.72727272727273)
        self.assertEqual(week["busiest_machine"]["id"], self.laser.id)
        self.assertAlmostEqual(week["busiest_working_h"], 6000 / 3600)

    def test_per_machine_sums(self):
        self.seed_week()
        data = self.get_data("month")
        rows = {m["name"]: m for m in data["machines"]}
        self.assertEqual([m["name"] for m in data["machines"]], ["Laser", "Band saw"])
        laser, saw = rows["Laser"], rows["Band saw"]
        self.assertEqual(laser["id"], self.laser.id)
        self.assertEqual(laser["machine_type"], "laser")
        self.assertEqual(laser["machine_type_label"], "Laser Cutter")
        self.assertEqual(laser["sessions"], 2)
        self.assertAlmostEqual(laser["working_h"], 6000 / 3600)
        self.assertAlmostEqual(laser["standby_h"], 1800 / 3600)
        self.assertAlmostEqual(laser["energy_kwh"], 4.1)
        self.assertEqual(saw["sessions"], 2)
        self.assertAlmostEqual(saw["working_h"], 4500 / 3600)
        self.assertAlmostEqual(saw["standby_h"], 2700 / 3600)
        self.assertAlmostEqual(saw["energy_kwh"], 1.7)
        # The machines add up to the KPIs.
        kpis = data["kpis"]
        self.assertAlmostEqual(
            sum(m["working_h"] for m in data["machines"]), kpis["working_h"]
        )
        self.assertEqual(sum(m["sessions"] for m in data["machines"]), kpis["sessions"])

    def test_end_reasons(self):
        self.seed_week()
        reasons = {r["reason"]: r for r in self.get_data("month")["end_reasons"]}
        self.assertEqual(
            {key: r["count"] for key, r in reasons.items()},
            {"power_drop": 1, "timeout": 1, "manual": 1, "running": 1},
        )
        self.assertEqual(reasons["timeout"]["label"], "Timeout")
        self.assertEqual(reasons["running"]["label"], "Still running")
        # Most first.
        seed_session(self.env, self.laser, "2026-03-10 10:00", 10, 60, 0, 1)
        self.assertEqual(
            [(r["reason"], r["count"]) for r in self.get_data("month")["end_reasons"]],
            [("power_drop", 2), ("manual", 1), ("running", 1), ("timeout", 1)],
        )
        # A closed session without a reason (older data) is not "running".
        self.env["mqtt.session"].search(
            [("end_reason", "=", "manual")]
        ).end_reason = False
        reasons = {r["reason"]: r for r in self.get_data("month")["end_reasons"]}
        self.assertNotIn("manual", reasons)
        self.assertEqual(reasons["unknown"]["count"], 1)
        self.assertEqual(reasons["unknown"]["label"], "Not recorded")
        self.assertEqual(reasons["running"]["count"], 1)

    def test_daily_series(self):
        self.seed_week()
        data = self.get_data("week")
        # Monday to today; the rest of the week has not happened yet.
        self.assertEqual(
            [d["date"] for d in data["daily"]],
            ["2026-03-16", "2026-03-17", "2026-03-18"],
        )
        monday, tuesday, wednesday = data["daily"]
        self.assertEqual((monday["working_h"], monday["standby_h"]), (0.0, 0.0))
        self.assertAlmostEqual(tuesday["working_h"], 1.5)
        self.assertAlmostEqual(tuesday["standby_h"], 0.5)
        self.assertAlmostEqual(wednesday["working_h"], 4200 / 3600)
        self.assertAlmostEqual(wednesday["standby_h"], 0.5)
        month = self.get_data("month")
        self.assertEqual(len(month["daily"]), 18)
        self.assertAlmostEqual(
            sum(d["working_h"] for d in month["daily"]), month["kpis"]["working_h"]
        )
        # A period in the past: all its days.
        february = self.get_data("custom", date_from="2026-02-01", date_to="2026-02-28")
        self.assertEqual(len(february["daily"]), 28)

    # -- heatmap --------------------------------------------------------------
    def test_heatmap_spreads_working_hours_over_the_hours_run(self):
        self.seed_week()
        grid = self.get_data("week")["heatmap"]
        self.assertEqual((len(grid), {len(row) for row in grid}), (7, {24}))
        cells = {
            (day, hour): round(value, 6)
            for day, row in enumerate(grid)
            for hour, value in enumerate(row)
            if value
        }
        self.assertEqual(
            cells,
            {
                # Tuesday 14:00-16:00, 1.5 h working: half in each hour.
                (1, 14): 0.75,
                (1, 15): 0.75,
                # Wednesday 08:00-09:30, 1 h working: 2/3 and 1/3; plus the
                # running session, 09:00 to its last update at 09:10.
                (2, 8): round(2 / 3, 6),
                (2, 9): round(1 / 3 + 1 / 6, 6),
            },
        )
        self.assertAlmostEqual(
            sum(map(sum, grid)), self.get_data("week")["kpis"]["working_h"]
        )

    def test_heatmap_bucket_in_the_readers_time_zone(self):
        # Sunday 23:10-23:40 UTC is Monday 00:10-00:40 in Berlin.
        start = datetime(2026, 3, 15, 23, 10).replace(tzinfo=pytz.utc).timestamp()
        self.make_session(
            self.saw,
            start,
            end_ts=start + 1800,
            last_update_ts=start + 1800,
            state="closed",
            working_duration_s=1800,
            end_reason="power_drop",
        )
        for tz, (day, hour) in ((BERLIN, (0, 0)), ("UTC", (6, 23))):
            with self.subTest(tz=tz):
                grid = self.get_data("month", tz=tz)["heatmap"]
                self.assertAlmostEqual(grid[day][hour], 0.5)
                self.assertAlmostEqual(sum(map(sum, grid)), 0.5)

    # -- periods --------------------------------------------------------------
    def test_week_starts_monday_midnight_in_the_readers_time_zone(self):
        # Sunday 23:30 in Berlin: last week. Monday 00:10 in Berlin: this week,
        # though it is still Sunday (23:10) in UTC.
        sunday = seed_session(self.env, self.saw, "2026-03-15 23:30", 10, 600, 0, 1)
        monday = seed_session(self.env, self.laser, "2026-03-16 00:10", 10, 600, 0, 1)
        berlin = self.get_data("week")
        self.assertEqual(berlin["kpis"]["sessions"], 1)
        self.assertEqual(berlin["machines"][0]["id"], monday.device_id.id)
        self.assertEqual(
            (berlin["date_from"], berlin["date_to"]), ("2026-03-16", "2026-03-22")
        )
        self.assertEqual(
            (berlin["start_utc"], berlin["stop_utc"]),
            ("2026-03-15 23:00:00", "2026-03-22 23:00:00"),
        )
        utc = self.get_data("week", tz="UTC")
        self.assertEqual(utc["kpis"]["sessions"], 0)
        self.assertEqual(utc["start_utc"], "2026-03-16 00:00:00")
        self.assertTrue(sunday.exists())

    def test_period_bounds(self):
        cases = {
            "today": ("2026-03-18", "2026-03-18", "2026-03-17 23:00:00"),
            "month": ("2026-03-01", "2026-03-31", "2026-02-28 23:00:00"),
            "year": ("2026-01-01", "2026-12-31", "2025-12-31 23:00:00"),
        }
        for period, (first, last, start_utc) in cases.items():
            with self.subTest(period=period):
                data = self.get_data(period)
                self.assertEqual((data["date_from"], data["date_to"]), (first, last))
                self.assertEqual(data["start_utc"], start_utc)
        # The month ends at midnight in Berlin, in summer time by then.
        self.assertEqual(self.get_data("month")["stop_utc"], "2026-03-31 22:00:00")
        custom = self.get_data("custom", date_from="2026-03-29", date_to="2026-03-29")
        self.assertEqual(
            (custom["start_utc"], custom["stop_utc"]),
            ("2026-03-28 23:00:00", "2026-03-29 22:00:00"),  # a 23-hour day
        )

    def test_session_at_period_end_and_custom_range(self):
        self.seed_week()
        # New Year's Eve 23:30 in Berlin belongs to 2025, not to this year.
        last_year = self.get_data(
            "custom", date_from="2025-12-31", date_to="2025-12-31"
        )
        self.assertEqual(last_year["kpis"]["sessions"], 1)
        self.assertEqual(last_year["machines"][0]["name"], "Printer")
        self.assertEqual(self.get_data("year")["kpis"]["sessions"], 5)
        # Both ends of a custom range are included.
        span = self.get_data("custom", date_from="2026-03-02", date_to="2026-03-17")
        self.assertEqual(span["kpis"]["sessions"], 2)
        with self.assertRaises(UserError):
            self.get_data("custom", date_from="2026-03-17", date_to="2026-03-02")
        with self.assertRaises(UserError):
            self.get_data("custom", date_from="2026-03-17")
        with self.assertRaises(UserError):
            self.get_data("fortnight")

    def test_empty_period(self):
        data = self.get_data("today")
        self.assertEqual(
            data["kpis"],
            {
                "sessions": 0,
                "running": 0,
                "working_h": 0.0,
                "standby_h": 0.0,
                "working_share": 0.0,
                "energy_kwh": 0.0,
                "busiest_machine": None,
                "busiest_working_h": 0.0,
            },
        )
        self.assertEqual(data["machines"], [])
        self.assertEqual(data["end_reasons"], [])
        self.assertEqual(data["heatmap"], [[0.0] * 24 for _day in range(7)])
        self.assertEqual(
            data["daily"], [{"date": "2026-03-18", "working_h": 0.0, "standby_h": 0.0}]
        )

    def test_plain_json(self):
        self.seed_week()
        data = self.get_data("year")
        self.assertEqual(json.loads(json.dumps(data)), data)

    def test_time_zone_falls_back_to_the_users_preference(self):
        seed_session(self.env, self.laser, "2026-03-16 00:10", 10, 600, 0, 1)
        self.user.tz = BERLIN
        data = self.env["mqtt.dashboard"].with_user(self.user).get_data("week")
        self.assertEqual((data["tz"], data["kpis"]["sessions"]), (BERLIN, 1))
        self.user.tz = False
        self.assertEqual(self.get_data("week", tz=False)["tz"], "UTC")
        self.assertEqual(self.get_data("week", tz="Mars/Olympus")["tz"], "UTC")

    # -- who sees what --------------------------------------------------------
    def test_multi_company_isolation(self):
        self.seed_week()
        company_b = self.env["res.company"].create({"name": "Other workshop"})
        broker_b = self.env["mqtt.connection"].create(
            {
                "name": "Broker B",
                "host": "127.0.0.1",
                "auto_start": False,
                "company_id": company_b.id,
            }
        )
        lathe = self.env["mqtt.device"].create(
            {
                "name": "Lathe B",
                "connection_id": broker_b.id,
                "topic_prefix": "lathe-b",
                "company_id": company_b.id,
            }
        )
        seed_session(self.env, lathe, "2026-03-18 07:00", 60, 3600, 0, 2000)
        user_b = new_test_user(
            self.env,
            login="owm_user_b",
            groups="base.group_user,open_workshop_mqtt.group_user",
            company_id=company_b.id,
            company_ids=[(6, 0, company_b.ids)],
        )
        both = new_test_user(
            self.env,
            login="owm_user_ab",
            groups="base.group_user,open_workshop_mqtt.group_user",
            company_id=self.env.company.id,
            company_ids=[(6, 0, (self.env.company | company_b).ids)],
        )
        mine = self.get_data("today")
        self.assertEqual(mine["kpis"]["sessions"], 2)
        self.assertNotIn("Lathe B", [m["name"] for m in mine["machines"]])
        theirs = self.get_data("today", user=user_b)
        self.assertEqual(theirs["kpis"]["sessions"], 1)
        self.assertEqual(theirs["kpis"]["running"], 0)
        self.assertEqual([m["name"] for m in theirs["machines"]], ["Lathe B"])
        self.assertAlmostEqual(sum(map(sum, theirs["heatmap"])), 1.0)
        self.assertEqual(self.get_data("today", user=both)["kpis"]["sessions"], 3)
        # The companies switched on in the web client narrow it down.
        only_b = (
            self.env["mqtt.dashboard"]
            .with_user(both)
            .with_context(tz=BERLIN, allowed_company_ids=company_b.ids)
            .get_data("today")
        )
        self.assertEqual(only_b["kpis"]["sessions"], 1)

    def test_access_needs_the_workshop_group(self):
        outsider = new_test_user(
            self.env, login="owm_outsider", groups="base.group_user"
        )
        with self.assertRaises(AccessError):
            self.get_data("month", user=outsider)
        self.assertEqual(
            self.get_data("month", user=self.manager)["kpis"]["sessions"], 0
        )

    def test_drill_down_domain_matches_the_kpis(self):
        """What a click on a machine opens: its sessions started in the period."""
        self.seed_week()
        data = self.get_data("week")
        laser = next(m for m in data["machines"] if m["name"] == "Laser")
        sessions = (
            self.env["mqtt.session"]
            .with_user(self.user)
            .search(
                [
                    ("device_id", "=", laser["id"]),
                    ("start_time", ">=", data["start_utc"]),
                    ("start_time", "<", data["stop_utc"]),
                ]
            )
        )
        self.assertEqual(len(sessions), laser["sessions"])
        self.assertAlmostEqual(
            sum(sessions.mapped("working_hours")), laser["working_h"]
        )


@tagged("post_install", "-at_install")
class TestDashboardTour(HttpCase):
    """Workshop > Analytics > Dashboard in a browser
    (static/tests/tours/dashboard_tour.js)."""

    def setUp(self):
        super().setUp()
        freeze_dashboard(self, NOW_UTC)
        self.env["mqtt.session"].search([]).unlink()
        self.env.ref("base.user_admin").tz = BERLIN
        broker = self.env["mqtt.connection"].create(
            {"name": "Dashboard broker", "host": "127.0.0.1", "auto_start": False}
        )

        def machine(name, prefix, machine_type):
            return self.env["mqtt.device"].create(
                {
                    "name": name,
                    "connection_id": broker.id,
                    "topic_prefix": prefix,
                    "machine_type": machine_type,
                }
            )

        laser = machine("Tour Laser", "dash-laser", "laser")
        saw = machine("Tour Saw", "dash-saw", "saw")
        env = self.env
        seed_session(env, laser, "2026-03-18 08:00", 120, 5400, 1800, 3000)
        seed_session(env, saw, "2026-03-18 09:00", 30, 1200, 600, 500)
        seed_session(env, laser, "2026-03-16 14:00", 60, 3000, 600, 1000)
        seed_session(env, saw, "2026-03-02 10:00", 60, 1800, 1800, 700)
        seed_session(env, laser, "2026-01-10 10:00", 60, 3600, 0, 1000)

    def test_dashboard_tour(self):
        self.start_tour(
            "/odoo/action-open_workshop_mqtt.mqtt_session_action",
            "owm_dashboard_tour",
            login="admin",
            timeout=120,
        )
