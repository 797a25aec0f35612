# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A workshop manager keeps the workshop's own settings (Odoo's general
Settings are the system administrator's)."""

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged

from ...models.mqtt_message import PARAM_MAX_ROWS, PARAM_RETENTION_DAYS
from ..common import WorkshopCase


@tagged("post_install", "-at_install")
class TestWorkshopSettings(WorkshopCase):
    def test_a_manager_saves_the_workshops_settings(self):
        self.assertFalse(self.manager.has_group("base.group_system"))
        settings = self.env["mqtt.workshop.settings"].with_user(self.manager).create({})
        self.assertEqual(
            settings.history_retention_days,
            self.env.company.owm_history_retention_days,
        )
        settings.write(
            {
                "history_retention_days": 90,
                "message_retention_days": 3,
                "message_max_rows": 5000,
            }
        )
        settings.action_save()
        self.assertEqual(self.env.company.owm_history_retention_days, 90)
        params = self.env["ir.config_parameter"].sudo()
        self.assertEqual(params.get_param(PARAM_RETENTION_DAYS), "3")
        self.assertEqual(params.get_param(PARAM_MAX_ROWS), "5000")
        with self.assertRaises(ValidationError):
            settings.write({"message_max_rows": -1})

    def test_staff_do_not(self):
        with self.assertRaises(AccessError):
            self.env["mqtt.workshop.settings"].with_user(self.user).create({})
