# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The usage meters: the sums of the machine's closed sessions, counted as
they close (the runner, a person's stop), moved by a recompute's changes,
deaf to the power meter's own counter, and nobody's to write by hand."""

from psycopg2 import IntegrityError

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.open_workshop_mqtt.models import mqtt_session_recompute
from odoo.addons.open_workshop_mqtt.services.engine.timebase import to_utc
from odoo.addons.open_workshop_mqtt.services.runner.config import load_devices
from odoo.addons.open_workshop_mqtt.tests.services.runner.common import T0

from .common import CYCLE, MaintenanceCase


@tagged("post_install", "-at_install")
class TestMeters(MaintenanceCase):
    def assertMetersAreTheSessionsSums(self):
        closed = self.sessions().filtered(lambda s: s.state == "closed")
        equipment = self.equipment
        self.assertEqual(equipment.mqtt_session_count, len(closed))
        self.assertAlmostEqual(
            equipment.mqtt_working_hours,
            sum(closed.mapped("working_duration_s")) / 3600.0,
        )
        self.assertAlmostEqual(
            equipment.mqtt_standby_hours,
            sum(closed.mapped("standby_duration_s")) / 3600.0,
        )
        self.assertAlmostEqual(
            equipment.mqtt_energy_kwh, sum(closed.mapped("energy_wh")) / 1000.0
        )

    def test_the_runner_counts_each_closed_session_once(self):
        self.play(times=3)
        self.assertEqual(self.equipment.mqtt_session_count, 3)
        self.assertGreater(self.equipment.mqtt_working_hours, 0.0)
        self.assertGreater(self.equipment.mqtt_standby_hours, 0.0)
        self.assertMetersAreTheSessionsSums()
        # A flush with nothing new closed adds nothing.
        self.flush()
        self.assertEqual(self.equipment.mqtt_session_count, 3)

    def test_a_running_session_counts_when_it_closes(self):
        self.play(CYCLE[:4])
        self.assertEqual(self.device.running_session_id.state, "running")
        self.assertEqual(self.equipment.mqtt_session_count, 0)
        self.device.with_user(self.user).action_stop_session()
        self.assertEqual(self.equipment.mqtt_session_count, 1)
        self.assertMetersAreTheSessionsSums()

    def test_a_counter_reset_or_another_meter_changes_nothing(self):
        self.play()
        before = self.equipment.mqtt_working_hours
        # The meter's own energy counter jumps back (a swap, a reset): the
        # meters count sessions, not the counter.
        self.device.sudo().write({"current_energy_wh": 0.0})
        self.device.sudo().write({"topic_prefix": "shellypmminig3-0000000000aa"})
        for cfg in load_devices(self.env, [self.connection.id]):
            self.service.engine.upsert_device(cfg, self.batch)
        self.play(prefix="shellypmminig3-0000000000aa")
        self.assertGreater(self.equipment.mqtt_working_hours, before)
        self.assertMetersAreTheSessionsSums()

    def test_a_recompute_moves_them_by_its_changes(self):
        # Two sessions 20 s apart; a 30 s stop delay joins them into one.
        watts = {
            **dict.fromkeys(range(10, 40, 5), 500.0),
            **dict.fromkeys(range(60, 90, 5), 500.0),
        }
        self.play([(t, watts.get(t, 0.0)) for t in range(0, 200, 5)])
        self.assertEqual(self.equipment.mqtt_session_count, 2)
        params = {name: self.device[name] for name in mqtt_session_recompute.PARAMS}
        params["stop_debounce_s"] = 30.0
        wizard = self.env["mqtt.session.recompute"].create(
            dict(
                params,
                device_ids=[(6, 0, self.device.ids)],
                date_from=to_utc(T0 - 60),
                date_to=to_utc(T0 + 300),
            )
        )
        wizard.action_apply()
        self.assertEqual(len(self.sessions()), 1)
        self.assertMetersAreTheSessionsSums()
        # And counting from the sessions again says the same.
        hours = self.equipment.mqtt_working_hours
        self.equipment.with_user(self.manager).action_recount_meters()
        self.assertAlmostEqual(self.equipment.mqtt_working_hours, hours)

    def test_linking_a_machine_counts_its_past(self):
        self.play(times=2, prefix=self.other.topic_prefix)
        laser = self.env["maintenance.equipment"].create({"name": "Laser"})
        self.assertEqual(laser.mqtt_session_count, 0)
        laser.write({"mqtt_device_id": self.other.id})
        self.assertEqual(laser.mqtt_session_count, 2)
        self.assertEqual(self.other.equipment_id, laser)
        # One equipment per machine.
        with (
            mute_logger("odoo.sql_db"),
            self.assertRaises(IntegrityError),
            self.env.cr.savepoint(),
        ):
            self.env["maintenance.equipment"].create(
                {"name": "Twin", "mqtt_device_id": self.other.id}
            )

    def test_nobody_writes_them_by_hand(self):
        self.play()
        maintainer = self.env["res.users"].create(
            {
                "name": "Maintainer",
                "login": "owm_maintainer",
                "groups_id": [
                    (6, 0, self.env.ref("maintenance.group_equipment_manager").ids)
                ],
            }
        )
        admin = self.env.ref("base.user_admin")
        for user in (maintainer, admin):
            for field in ("mqtt_working_hours", "mqtt_base_working_hours"):
                with self.assertRaises(UserError):
                    self.equipment.with_user(user).write({field: 0.0})
        # Linking a machine is a workshop manager's.
        with self.assertRaises(AccessError):
            self.env["maintenance.equipment"].with_user(maintainer).create(
                {"name": "Sneaky", "mqtt_device_id": self.other.id}
            )
        with self.assertRaises(AccessError):
            self.equipment.with_user(maintainer).write({"mqtt_device_id": False})
        # Who may, may.
        self.equipment.with_user(maintainer).write({"note": "<p>oiled</p>"})
        self.assertGreater(self.equipment.mqtt_working_hours, 0.0)

    def test_staff_see_the_meters_of_the_machines(self):
        self.play()
        equipment = self.equipment.with_user(self.user)
        self.assertGreater(equipment.mqtt_working_hours, 0.0)
        self.assertEqual(equipment.mqtt_current_state, "idle")
        # An equipment that is no machine stays maintenance's business.
        private = self.env["maintenance.equipment"].create({"name": "Office chair"})
        self.assertFalse(
            self.env["maintenance.equipment"]
            .with_user(self.user)
            .search([("id", "=", private.id)])
        )

    def test_the_machine_form_makes_its_equipment(self):
        action = self.other.with_user(self.manager).action_create_equipment()
        equipment = self.env["maintenance.equipment"].browse(action["res_id"])
        self.assertEqual(equipment.mqtt_device_id, self.other)
        self.assertEqual(equipment.name, self.other.name)
        with self.assertRaises(UserError):
            self.other.with_user(self.manager).action_create_equipment()
        with self.assertRaises(AccessError):
            self.device.with_user(self.user).action_create_equipment()
        # The equipment's buttons lead to the machine's sessions.
        sessions = equipment.with_user(self.user).action_view_mqtt_sessions()
        self.assertIn(("device_id", "=", self.other.id), sessions["domain"])
