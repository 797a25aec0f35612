# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import time
from unittest.mock import patch

from psycopg2 import IntegrityError

from odoo.exceptions import UserError, ValidationError
from odoo.tests import Form, tagged
from odoo.tools import mute_logger

from ..common import WorkshopCase

NOTIFY = "odoo.addons.open_workshop_mqtt.models.mqtt_device.notify_runner"


@tagged("post_install", "-at_install")
class TestDeviceRules(WorkshopCase):
    def test_detector_settings_are_validated_with_clear_messages(self):
        cases = [
            (
                {"standby_threshold_w": 0},
                r"Standby Threshold \(W\) must be above 0 \(it is 0\)",
            ),
            ({"standby_threshold_w": -5}, r"must be above 0 \(it is -5\)"),
            (
                {"standby_threshold_w": 50, "working_threshold_w": 40},
                r"Standby Threshold \(W\) cannot be above Working Threshold \(W\) "
                r"\(50 > 40\)",
            ),
            ({"start_debounce_s": -1}, r"Start Delay \(s\) cannot be negative"),
            ({"stop_debounce_s": -0.5}, r"Stop Delay \(s\) cannot be negative"),
            ({"message_timeout_s": 0}, r"Silence Timeout \(s\) must be above 0"),
            ({"poll_interval_s": -1}, "poll interval cannot be negative"),
            (
                {"poll_interval_s": 30, "message_timeout_s": 20},
                "timed out between polls",
            ),
            ({"max_msg_rate": 0}, "at least 1/s"),
            ({"standby_threshold_w": float("nan")}, "must be a number"),
        ]
        for vals, message in cases:
            with (
                self.subTest(vals=vals),
                self.assertRaisesRegex(ValidationError, message),
            ):
                with self.cr.savepoint():
                    self.device.write(vals)

    def test_threshold_equality_is_allowed(self):
        self.device.write({"standby_threshold_w": 50, "working_threshold_w": 50})
        self.assertEqual(self.device.working_threshold_w, 50)
        self.device.write({"poll_interval_s": 0, "start_debounce_s": 0})
        self.assertEqual(self.device.poll_interval_s, 0)

    def test_topic_prefixes_are_validated(self):
        for prefix, message in [
            ("shelly/+/x", "invalid topic prefix"),
            ("shelly/#", "invalid topic prefix"),
            ("/shelly", "must not start or end with '/'"),
            ("shelly/", "must not start or end with '/'"),
            ("$SYS/broker", "start with '\\$'"),
        ]:
            with (
                self.subTest(prefix=prefix),
                self.assertRaisesRegex(ValidationError, message),
            ):
                with self.cr.savepoint():
                    self.device.topic_prefix = prefix
        self.device.topic_prefix = "  shelly/ug/heizraum/trockner  "
        self.assertEqual(self.device.topic_prefix, "shelly/ug/heizraum/trockner")

    def test_shelly_meter_needs_a_prefix_and_a_known_component(self):
        with self.assertRaisesRegex(ValidationError, "needs a topic prefix"):
            self.make_device("No prefix", False)
        with self.assertRaisesRegex(ValidationError, "not a metering channel"):
            with self.cr.savepoint():
                self.device.component = "pm2"
        with self.assertRaisesRegex(ValidationError, "not a metering channel"):
            with self.cr.savepoint():
                self.device.write({"parser_type": "shelly_gen1", "component": "pm1:0"})
        self.device.write({"parser_type": "shelly_gen1", "component": "emeter:1"})
        self.device.write({"parser_type": "shelly_gen2", "component": "switch:0"})
        self.assertEqual(self.device.component, "switch:0")
        # Three-phase and summed channels; the parser's rules are the model's.
        accepted = [
            ("shelly_gen2", "em:0"),
            ("shelly_gen2", "em1:1"),
            ("shelly_gen2", "em1:0+em1:1"),
            ("shelly_gen1", "roller:0"),
            ("shelly_gen1", "emeter:0+emeter:1+emeter:2"),
        ]
        for parser_type, component in accepted:
            vals = {"parser_type": parser_type, "component": component}
            self.device.write(vals)
            self.assertEqual(self.device.component, component)
        # Typed with spaces, stored as the runner reads it.
        self.device.write({"component": " emeter:0 + emeter:2 "})
        self.assertEqual(self.device.component, "emeter:0+emeter:2")
        refused = [
            ("shelly_gen2", "em:0+em:0"),  # a channel twice
            ("shelly_gen2", "Cover:0"),  # no component's name
            ("shelly_gen1", "emeter:0+"),
            ("shelly_gen1", "+".join(f"emeter:{n}" for n in range(9))),
        ]
        for parser_type, component in refused:
            vals = {"parser_type": parser_type, "component": component}
            with (
                self.subTest(component=component),
                self.assertRaisesRegex(ValidationError, "not a metering channel"),
                self.cr.savepoint(),
            ):
                self.device.write(vals)

    def test_generic_meter_topic_filters(self):
        device = self.make_device(
            "Generic",
            False,
            parser_type="generic_json",
            topic_pattern="workshop/+/power",
        )
        self.assertEqual(device.topic_pattern, "workshop/+/power")
        for pattern in ("workshop/#/power", "work+shop", "a/b#", ""):
            with self.subTest(pattern=pattern), self.assertRaises(ValidationError):
                with self.cr.savepoint():
                    device.topic_pattern = pattern
        device.topic_pattern = "workshop/#"

    def test_prefix_is_unique_per_broker(self):
        with (
            mute_logger("odoo.sql_db"),
            self.assertRaises(IntegrityError),
            self.cr.savepoint(),
        ):
            self.make_device("Twin", self.device.topic_prefix)
        other = self.connection.copy({"name": "Second broker"})
        twin = self.env["mqtt.device"].create(
            {
                "name": "Twin",
                "connection_id": other.id,
                "topic_prefix": self.device.topic_prefix,
            }
        )
        self.assertEqual(twin.connection_id, other)

    def test_form_sets_component_by_meter_type(self):
        form = Form(self.env["mqtt.device"])
        form.name = "Drill"
        form.connection_id = self.connection
        form.topic_prefix = "shellies/drill"
        form.parser_type = "shelly_gen1"
        self.assertEqual(form.component, "relay:0")
        form.parser_type = "shelly_gen2"
        self.assertEqual(form.component, "pm1:0")
        device = form.save()
        self.assertEqual(device.standby_threshold_w, 20.0)
        self.assertEqual(device.working_threshold_w, 100.0)
        self.assertEqual(device.poll_interval_s, 5.0)

    def test_config_changes_wake_the_runner_live_fields_do_not(self):
        with patch(NOTIFY) as notify:
            self.device.standby_threshold_w = 25
            self.assertEqual(notify.call_count, 1)
            self.device.write({"current_power_w": 12.0, "online": True})
            self.assertEqual(notify.call_count, 1)
            self.device.topic_prefix = "shellypmminig3-000000000001"
            self.assertEqual(notify.call_count, 2)

    def test_device_with_sessions_is_archived_not_deleted(self):
        self.make_session(self.device, 1_780_000_000.0)
        with self.assertRaisesRegex(UserError, "archive them instead"):
            self.device.unlink()
        fresh = self.make_device("Fresh", "shellypmminig3-fresh")
        fresh.unlink()
        self.assertFalse(fresh.exists())

    def test_confirm_discovered_device(self):
        found = self.make_device(
            "shellypmminig3-found", "shellypmminig3-found", active=False
        )
        found.discovery_state = "discovered"
        found.action_confirm_discovered()
        self.assertTrue(found.active)
        self.assertEqual(found.discovery_state, "confirmed")


@tagged("post_install", "-at_install")
class TestManualSessions(WorkshopCase):
    def test_manual_start_and_stop(self):
        device = self.device.with_user(self.user)
        before = time.time()
        device.action_start_session()
        session = self.device.running_session_id
        self.assertTrue(session)
        self.assertEqual(session.state, "running")
        self.assertEqual(session.origin, "manual")
        self.assertEqual(session.started_by_id, self.user)
        self.assertGreaterEqual(session.start_ts, before - 1)
        with self.assertRaisesRegex(UserError, "already has a running session"):
            device.action_start_session()

        # The runner counted 10 s standby and 20 s working up to start + 30 s.
        session.write(
            {
                "start_ts": session.start_ts - 100,
                "standby_duration_s": 10.0,
                "working_duration_s": 20.0,
                "last_update_ts": session.start_ts - 70,
                "energy_wh": 5.0,
            }
        )
        self.device.write({"current_state": "working", "current_power_w": 360.0})
        device.action_stop_session()
        session.invalidate_recordset()
        self.assertEqual(session.state, "closed")
        self.assertEqual(session.end_reason, "manual")
        self.assertEqual(session.stopped_by_id, self.user)
        self.assertFalse(self.device.running_session_id)
        self.assertAlmostEqual(
            session.standby_duration_s + session.working_duration_s,
            session.end_ts - session.start_ts,
            places=6,
        )
        self.assertEqual(session.standby_duration_s, 10.0)
        rest = session.end_ts - session.start_ts - 30.0
        self.assertAlmostEqual(session.working_duration_s, 20.0 + rest, places=6)
        self.assertAlmostEqual(session.energy_wh, 5.0 + 360.0 * rest / 3600.0, places=6)
        with self.assertRaisesRegex(UserError, "no running session"):
            device.action_stop_session()

    def test_manual_stop_from_the_session(self):
        self.device.action_start_session()
        session = self.device.running_session_id
        session.with_user(self.user).action_stop()
        self.assertEqual(session.state, "closed")
        self.assertEqual(session.end_reason, "manual")
        with self.assertRaisesRegex(UserError, "already closed"):
            session.action_stop()

    def test_archiving_a_machine_ends_its_running_session(self):
        self.device.action_start_session()
        session = self.device.running_session_id
        other = self.make_device("Other", "shellypmminig3-other")
        other.action_start_session()
        self.device.with_user(self.manager).action_archive()
        session.invalidate_recordset()
        self.assertEqual(session.state, "closed")
        self.assertEqual(session.end_reason, "manual")
        self.assertEqual(session.stopped_by_id, self.manager)
        self.assertFalse(self.device.running_session_id)
        self.assertEqual(other.running_session_id.state, "running")

    def test_manual_session_uses_the_meter_clock(self):
        self.device.parser_snapshot = {"clock_offset": 3600.0}
        self.device.action_start_session()
        session = self.device.running_session_id
        self.assertAlmostEqual(session.start_ts, time.time() + 3600.0, delta=5)

    def test_usage_totals(self):
        first = self.make_session(
            self.device,
            1_780_000_000.0,
            end_ts=1_780_003_600.0,
            state="closed",
            end_reason="power_drop",
            standby_duration_s=1800.0,
            working_duration_s=1800.0,
            energy_wh=750.0,
        )
        self.make_session(
            self.device,
            1_780_010_000.0,
            end_ts=1_780_010_900.0,
            state="closed",
            end_reason="timeout",
            standby_duration_s=0.0,
            working_duration_s=900.0,
            energy_wh=250.0,
        )
        self.assertEqual(self.device.session_count, 2)
        self.assertAlmostEqual(self.device.total_working_hours, 0.75)
        self.assertAlmostEqual(self.device.total_standby_hours, 0.5)
        self.assertAlmostEqual(self.device.total_energy_kwh, 1.0)
        # They follow a session's change and its removal; another machine's
        # sessions never count.
        other = self.device.copy({"topic_prefix": "other/totals"})
        self.make_session(other, 1_780_020_000.0, working_duration_s=60.0)
        first.write({"working_duration_s": 3600.0, "energy_wh": 1750.0})
        self.assertAlmostEqual(self.device.total_working_hours, 1.25)
        self.assertAlmostEqual(self.device.total_energy_kwh, 2.0)
        first.unlink()
        self.assertEqual(self.device.session_count, 1)
        self.assertAlmostEqual(self.device.total_working_hours, 0.25)
        self.assertAlmostEqual(self.device.total_standby_hours, 0.0)
        self.assertEqual(other.session_count, 1)
        self.assertAlmostEqual(other.total_working_hours, 60.0 / 3600.0)
        action = self.device.action_view_sessions()
        self.assertEqual(action["domain"], [("device_id", "=", self.device.id)])

    def totals(self, device):
        device.invalidate_recordset()
        return (
            device.session_count,
            round(device.total_working_hours * 3600.0, 6),
            round(device.total_standby_hours * 3600.0, 6),
            round(device.total_energy_kwh * 1000.0, 6),
        )

    def test_usage_totals_follow_a_session_moved_or_refused(self):
        session = self.make_session(
            self.device, 1_780_000_000.0, working_duration_s=600.0, energy_wh=50.0
        )
        other = self.device.copy({"topic_prefix": "other/moved"})
        self.assertEqual(self.totals(other), (0, 0.0, 0.0, 0.0))  # not copied
        session.write({"device_id": other.id, "standby_duration_s": 30.0})
        self.assertEqual(self.totals(self.device), (0, 0.0, 0.0, 0.0))
        self.assertEqual(self.totals(other), (1, 600.0, 30.0, 50.0))
        with self.assertRaises(UserError), self.env.cr.savepoint():
            session.with_user(self.manager).write({"working_duration_s": 1.0})
        self.assertEqual(self.totals(other), (1, 600.0, 30.0, 50.0))
        session.write({"origin": "manual"})  # no total changes
        self.assertEqual(self.totals(other), (1, 600.0, 30.0, 50.0))

    def test_usage_totals_add_what_a_write_changes_not_the_whole_history(self):
        session = self.make_session(self.device, 1_780_000_000.0)
        # A figure the sessions do not sum to: a write adds its own change to
        # it (a progress never reads the machine's other sessions) ...
        self.env.cr.execute(
            "UPDATE mqtt_device SET session_count = 7, total_working_hours = 2.0 "
            "WHERE id = %s",
            (self.device.id,),
        )
        session.write({"working_duration_s": 360.0})
        self.assertEqual(self.totals(self.device), (7, 7560.0, 0.0, 0.0))
        # ... and the exact sum replaces it.
        self.device._recompute_usage()
        self.assertEqual(self.totals(self.device), (1, 360.0, 0.0, 0.0))
        empty = self.device.copy({"topic_prefix": "other/empty"})
        self.env.cr.execute(
            "UPDATE mqtt_device SET session_count = 3 WHERE id = %s", (empty.id,)
        )
        empty._recompute_usage()
        self.assertEqual(self.totals(empty), (0, 0.0, 0.0, 0.0))
