# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Every public method of the addon's models has a written rule and keeps it
(the walk: tests/rights_walk.py)."""

from odoo.exceptions import AccessError
from odoo.tests import tagged

from ..common import WorkshopCase
from ..rights_walk import RightsWalk, public_methods


@tagged("post_install", "-at_install")
class TestEveryPublicMethodKeepsItsRule(RightsWalk, WorkshopCase):
    ADDON = "odoo.addons.open_workshop_mqtt."
    TABLES = (
        "mqtt_connection",
        "mqtt_device",
        "mqtt_session",
        "mqtt_message",
        "mqtt_power_chunk",
        "mqtt_session_recompute",
        "mqtt_session_recompute_log",
        "res_company",
    )
    KNOWN = (
        ("mqtt.device", "action_start_session"),
        ("mqtt.connection", "action_start"),
        ("mqtt.session.recompute", "action_apply"),
        ("mqtt.dashboard", "get_data"),
    )
    ARGS = {
        "write": ({"name": "Taken over"},),
        "get_power_curve": (),
        "default_get": (["device_ids", "standby_threshold_w"],),
        "get_data": ("year",),
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_walkers()
        cls.device.fault = "a fault to dismiss"
        cls.session = cls.make_session(cls, cls.device, 1_780_000_000.0)
        cls.device.running_session_id = cls.session
        cls.wizard = (
            cls.env["mqtt.session.recompute"]
            .with_user(cls.manager)
            .create({"device_ids": [(6, 0, cls.device.ids)]})
        )
        failure = cls.env["mqtt.session.hook.failure"]._record(
            cls.session, "runner", [], ValueError("an addon's bug")
        )
        settings = cls.env["mqtt.workshop.settings"].with_user(cls.manager).create({})
        # Records of this company, per model, that a method is called on.
        cls.records = {
            "mqtt.connection": cls.connection,
            "mqtt.device": cls.device,
            "mqtt.session": cls.session,
            "mqtt.session.recompute": cls.wizard,
            "mqtt.session.hook.failure": failure,
            "mqtt.workshop.settings": settings,
        }
        # Values that would tie a new record of another company to ours.
        cls.create_values = {
            "mqtt.connection": {"name": "Into A", "company_id": cls.env.company.id},
            "mqtt.device": {
                "name": "Into A's broker",
                "connection_id": cls.connection.id,
                "topic_prefix": "shellypmminig3-0a0b0c0d0e0f",
            },
            "mqtt.session.recompute": {"device_ids": [(6, 0, cls.device.ids)]},
            "mqtt.session": {
                "device_id": cls.device.id,
                "start_ts": 1_700_000_000.0,  # before every other of it
                "start_time": "2023-11-14 22:13:20",
                "end_ts": 1_700_000_600.0,
                "end_time": "2023-11-14 22:23:20",
                "state": "closed",
            },
        }

    def test_methods_without_records_show_another_company_nothing(self):
        env = self.env(user=self.manager_b)
        data = env["mqtt.dashboard"].get_data("year")
        self.assertNotIn(self.device.name, repr(data))
        self.assertEqual(data["kpis"]["running"], 0)
        wizard = env["mqtt.session.recompute"].with_context(
            active_model="mqtt.device", active_ids=self.device.ids
        )
        with self.assertRaises(AccessError):
            wizard.default_get(["device_ids", "standby_threshold_w"])
        # Every such method is named here: a new one needs its own check.
        model_level = sorted(
            f"{model}.{name}"
            for (model, name), func in public_methods(self.env, self.ADDON).items()
            if func.owm_rule[1] is None
        )
        self.assertEqual(
            model_level,
            ["mqtt.dashboard.get_data", "mqtt.session.recompute.default_get"],
        )
