# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""German: i18n/de.po is complete (the main addon's catalog checks)."""

from odoo.tests import tagged

from odoo.addons.open_workshop_mqtt.tests.common import WorkshopCase
from odoo.addons.open_workshop_mqtt.tests.i18n_catalog import GermanCatalog


@tagged("post_install", "-at_install")
class TestGermanCatalog(GermanCatalog, WorkshopCase):
    MODULE = "open_workshop_mqtt_pos"
    MIN_TERMS = 30
