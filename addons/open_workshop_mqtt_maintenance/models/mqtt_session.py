# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The bridge's one way in: closed sessions count into their equipment's
usage meters, and the equipment's plans are checked.

A recompute's changes move the meters by what they changed (after minus
before): the meters stay the sum of the machine's closed sessions.  A few
queries per close, inside the runner's flush (models/mqtt_session_lifecycle.py
of open_workshop_mqtt says what a hook may cost)."""

from odoo import models

from .maintenance_equipment import METERS


class MqttSession(models.Model):
    _inherit = "mqtt.session"

    def _on_sessions_closed(self, origin, changes=()):
        super()._on_sessions_closed(origin, changes)
        machines = self.device_id | self.env["mqtt.device"].browse(
            {c.device_id for c in changes}
        )
        equipment = (
            self.env["maintenance.equipment"]
            .sudo()
            .search([("mqtt_device_id", "in", machines.ids)])
        )
        if not equipment:
            return
        if origin == "recompute":
            for piece in equipment:
                piece._shift_meters(*_deltas(piece.mqtt_device_id.id, changes))
        else:
            equipment._add_to_meters(self.sudo())
        equipment.mqtt_plan_ids._check_due()


def _deltas(device_id, changes):
    """What a recompute's ``changes`` of one machine move its meters by:
    ({equipment field: amount}, sessions)."""
    amounts = dict.fromkeys((field for field, _d in METERS.values()), 0.0)
    sessions = 0
    for change in changes:
        if change.device_id != device_id:
            continue
        for side, sign in ((change.after, 1), (change.before, -1)):
            if side is None:
                continue
            sessions += sign
            for session_field, (field, divisor) in METERS.items():
                amounts[field] += sign * (side[session_field] or 0.0) / divisor
    return amounts, sessions
