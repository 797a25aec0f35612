# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A session's power curve in a real browser (tours/power_curve_tour.js)."""

import time

from odoo.tests import HttpCase, tagged

from ..common import play_meter

PREFIX = "shellypmminig3-00000000c0c0"


@tagged("post_install", "-at_install")
class TestPowerCurveTour(HttpCase):
    def test_power_curve_tour(self):
        connection = self.env["mqtt.connection"].create(
            {"name": "Curve broker", "host": "127.0.0.1", "auto_start": False}
        )
        device = self.env["mqtt.device"].create(
            {
                "name": "Curve Saw",
                "connection_id": connection.id,
                "topic_prefix": PREFIX,
            }
        )
        # An hour ago: 20 s off, 120 s at 650 W with 10 s at 60 W, then off.
        t0 = round(time.time()) - 3600.0
        powers = [0.0] * 20 + [650.0] * 60 + [60.0] * 10 + [650.0] * 60 + [0.0] * 40
        play_meter(
            self.env,
            connection,
            [(PREFIX, t0 + n, watts) for n, watts in enumerate(powers)],
        )
        session = self.env["mqtt.session"].search([("device_id", "=", device.id)])
        self.assertEqual(len(session), 1)
        self.start_tour(
            f"/odoo/action-open_workshop_mqtt.mqtt_session_action/{session.id}",
            "owm_power_curve_tour",
            login="admin",
            timeout=120,
        )
