# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The equipment form in a real browser (tours/equipment_tour.js)."""

import time

from odoo.tests import HttpCase, tagged

from odoo.addons.open_workshop_mqtt.services.engine.timebase import to_utc


@tagged("post_install", "-at_install")
class TestEquipmentTour(HttpCase):
    def test_equipment_tour(self):
        connection = self.env["mqtt.connection"].create(
            {"name": "Tour broker", "host": "127.0.0.1", "auto_start": False}
        )
        device = self.env["mqtt.device"].create(
            {
                "name": "Tour Laser",
                "connection_id": connection.id,
                "topic_prefix": "shellypmminig3-00000000e0e0",
            }
        )
        # Two closed sessions yesterday: 1 h and 30 min under load.
        start = time.time() - 86400
        for offset, working in ((0, 3600.0), (7200, 1800.0)):
            begin = start + offset
            self.env["mqtt.session"].create(
                {
                    "device_id": device.id,
                    "start_ts": begin,
                    "start_time": to_utc(begin),
                    "end_ts": begin + working + 60,
                    "end_time": to_utc(begin + working + 60),
                    "last_update_ts": begin + working + 60,
                    "working_duration_s": working,
                    "standby_duration_s": 60.0,
                    "state": "closed",
                    "end_reason": "power_drop",
                }
            )
        equipment = self.env["maintenance.equipment"].create(
            {"name": "Tour Laser", "mqtt_device_id": device.id}
        )
        plan = self.env["mqtt.maintenance.plan"].create(
            {
                "name": "Clean the lens",
                "equipment_id": equipment.id,
                "interval_working_hours": 1.0,
                "base_working_hours": 0.0,
            }
        )
        self.assertEqual(len(plan._check_due()), 1)
        self.start_tour(
            f"/odoo/action-maintenance.hr_equipment_action/{equipment.id}",
            "owm_equipment_tour",
            login="admin",
            timeout=120,
        )
