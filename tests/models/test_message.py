# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from ..common import WorkshopCase


@tagged("post_install", "-at_install")
class TestMessageLog(WorkshopCase):
    def _log(self, age_days, count=1):
        when = fields.Datetime.now() - timedelta(days=age_days)
        return self.env["mqtt.message"].create(
            [
                {
                    "device_id": self.device.id,
                    "connection_id": self.connection.id,
                    "topic": f"{self.device.topic_prefix}/events/rpc",
                    "payload": "{}",
                    "received_at": when,
                    "status": "reading",
                }
                for _i in range(count)
            ]
        )

    def test_retention_removes_only_old_messages(self):
        self.env["mqtt.message"].search([]).unlink()
        old = self._log(10, 3)
        new = self._log(1, 2)
        removed = self.env["mqtt.message"]._gc_messages()
        self.assertEqual(removed, 3)
        self.assertFalse(old.exists())
        self.assertEqual(len(new.exists()), 2)

    def test_row_cap_removes_the_oldest(self):
        self.env["mqtt.message"].search([]).unlink()
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("open_workshop_mqtt.message_max_rows", "4")
        oldest = self._log(3, 2)
        newer = self._log(1, 4)
        self.assertEqual(self.env["mqtt.message"]._gc_messages(), 2)
        self.assertFalse(oldest.exists())
        self.assertEqual(len(newer.exists()), 4)

    def test_bad_parameter_falls_back_to_default(self):
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("open_workshop_mqtt.message_retention_days", "seven")
        self._log(10)
        with self.assertLogs(
            "odoo.addons.open_workshop_mqtt.models.mqtt_message", level="WARNING"
        ) as logs:
            removed = self.env["mqtt.message"]._gc_messages()
        self.assertGreaterEqual(removed, 1)
        self.assertIn("is not a number", logs.output[0])

    def test_cron_is_registered(self):
        cron = self.env.ref("open_workshop_mqtt.mqtt_message_cron_gc")
        self.assertEqual(cron.code, "model._gc_messages()")
        self.assertTrue(cron.active)
