# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""German: i18n/de.po is complete (the main addon's catalog checks), and a
guard speaks German to a German reader."""

from odoo.tests import tagged

from odoo.addons.open_workshop_mqtt.tests.common import WorkshopCase
from odoo.addons.open_workshop_mqtt.tests.i18n_catalog import GermanCatalog

MODULE = "open_workshop_mqtt_maintenance"


@tagged("post_install", "-at_install")
class TestGermanCatalog(GermanCatalog, WorkshopCase):
    MODULE = MODULE
    MIN_TERMS = 50


@tagged("post_install", "-at_install")
class TestGermanGuards(WorkshopCase):
    def test_a_guard_is_named_in_the_readers_language(self):
        self.env["res.lang"]._activate_lang("de_DE")
        self.env["ir.module.module"]._load_module_terms(
            ["open_workshop_mqtt", MODULE], ["de_DE"], overwrite=True
        )
        guard = self.env["mqtt.maintenance.guard"].create(
            {"device_id": self.device.id, "kind": "left_on", "threshold_minutes": 30}
        )
        self.assertEqual(guard.name, "Left On after 30 min")
        self.assertEqual(
            guard.with_context(lang="de_DE").name, "Angelassen nach 30 Min."
        )
        self.assertEqual(
            guard.with_context(lang="de_DE").preview_text,
            "Er hätte in den letzten 30 Tagen nicht ausgelöst.",
        )
