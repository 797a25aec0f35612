# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The till in a real browser (tours/machines_tour.js): a machine live, a
session added for the selected member and paid."""

import time

from odoo.tests import tagged

from odoo.addons.open_workshop_mqtt.services.engine.timebase import to_utc
from odoo.addons.point_of_sale.tests.test_frontend import TestPointOfSaleHttpCommon


@tagged("post_install", "-at_install")
class TestPosMachinesTour(TestPointOfSaleHttpCommon):
    def test_pos_machines_tour(self):
        su = self.env(su=True)
        product = su["product.product"].create(
            {
                "name": "Laser time",
                "type": "service",
                "available_in_pos": True,
                "list_price": 0.0,
                "taxes_id": [(5, 0, 0)],
            }
        )
        connection = su["mqtt.connection"].create(
            {"name": "Tour broker", "host": "127.0.0.1", "auto_start": False}
        )
        machine = su["mqtt.device"].create(
            {
                "name": "Tour Laser",
                "connection_id": connection.id,
                "topic_prefix": "shellypmminig3-00000000b0b0",
                "pos_product_id": product.id,
                "rate_working_hour": 12.0,
                "online": True,
            }
        )
        member = su["res.partner"].create({"name": "Aaa Member"})
        begin = time.time() - 3600
        session = su["mqtt.session"].create(
            {
                "device_id": machine.id,
                "start_ts": begin,
                "start_time": to_utc(begin),
                "end_ts": begin + 1860,
                "end_time": to_utc(begin + 1860),
                "last_update_ts": begin + 1860,
                "working_duration_s": 1800.0,
                "standby_duration_s": 60.0,
                "energy_wh": 400.0,
                "state": "closed",
                "end_reason": "power_drop",
            }
        )
        self.assertEqual(session.price, 6.0)
        self.main_pos_config.with_user(self.pos_user).open_ui()
        self.start_pos_tour("owm_pos_machines_tour", timeout=180)
        order = self.env["pos.order"].search(
            [("session_id", "=", self.main_pos_config.current_session_id.id)]
        )
        self.assertEqual(order.state, "paid")
        self.assertEqual(order.partner_id, member)
        self.assertEqual(order.lines.mqtt_session_id, session)
        self.assertIn("Tour Laser", order.lines.customer_note)
        self.assertTrue(session.pos_charged)
        self.assertEqual(session.pos_order_line_id, order.lines)
        self.assertEqual(session.partner_id, member)
        self.assertFalse(session.pos_reserved_uuid)
