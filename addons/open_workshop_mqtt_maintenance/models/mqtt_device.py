# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A machine's equipment (one at most) and its guards' marks on the board."""

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from odoo.addons.open_workshop_mqtt.models.rights import MANAGER, USER, guarded


class MqttDevice(models.Model):
    _inherit = "mqtt.device"

    equipment_ids = fields.One2many(
        "maintenance.equipment", "mqtt_device_id", string="Equipment Records"
    )
    equipment_id = fields.Many2one(
        "maintenance.equipment",
        compute="_compute_equipment_id",
        help="The maintenance equipment this machine is.",
    )
    guard_ids = fields.One2many("mqtt.maintenance.guard", "device_id", string="Guards")
    guard_alert = fields.Char(
        compute="_compute_guard_alert",
        help="What its guards see now (left on, a long session, silent, used "
        "outside working hours).",
    )

    @api.depends("equipment_ids")
    def _compute_equipment_id(self):
        for machine in self:
            machine.equipment_id = machine.equipment_ids[:1]

    @api.depends("guard_ids.alert_active", "guard_ids.name")
    @api.depends_context("lang")
    def _compute_guard_alert(self):
        """The board's mark: the guards alerting now, in the reader's words."""
        for machine in self:
            alerting = machine.sudo().guard_ids.filtered("alert_active")
            machine.guard_alert = ", ".join(alerting.mapped("name")) or False

    @guarded(MANAGER, "write")
    def action_create_equipment(self):
        """Make this machine a piece of maintenance equipment (once)."""
        self.ensure_one()
        if self.equipment_ids:
            raise UserError(_("%s is an equipment already.", self.name))
        equipment = (
            self.env["maintenance.equipment"]
            .sudo()
            .create(
                {
                    "name": self.name,
                    "mqtt_device_id": self.id,
                    "location": self.location,
                    "company_id": self.company_id.id or self.env.company.id,
                }
            )
        )
        return equipment.get_formview_action()

    @guarded(USER)
    def action_view_equipment(self):
        self.ensure_one()
        return self.equipment_id.get_formview_action()
