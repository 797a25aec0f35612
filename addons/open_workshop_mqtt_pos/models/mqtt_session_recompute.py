# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A recompute never changes a session a till charged or holds: such
sessions are left as they are, like a person's (and whatever a replayed
session overlaps of them); the preview counts them among the left alone."""

from odoo import api, models


class MqttSessionRecompute(models.TransientModel):
    _inherit = "mqtt.session.recompute"

    @api.model
    def _sessions_left_alone(self, device):
        held = (
            self.env["mqtt.session"]
            .sudo()
            .search(
                [
                    ("device_id", "=", device.id),
                    "|",
                    ("pos_order_line_id", "!=", False),
                    ("pos_reserved_uuid", "!=", False),
                ]
            )
        )
        # And any a line names (a draft order's, a refunded charge's).
        named = (
            self.env["pos.order.line"]
            .sudo()
            .search([("mqtt_session_id.device_id", "=", device.id)])
        )
        return (
            super()._sessions_left_alone(device)
            | set(held.ids)
            | set(named.mqtt_session_id.ids)
        )
