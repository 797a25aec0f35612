# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The workshop's own settings, for its managers (Configuration > Settings).

Odoo's general Settings are for system administrators; a workshop manager
keeps what belongs to the workshop here: how long the power history and
the raw message log are kept.  Saved as superuser once the rule allows it
(the history per company, the raw log for the database).
"""

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from .mqtt_message import (
    DEFAULT_MAX_ROWS,
    DEFAULT_RETENTION_DAYS,
    PARAM_MAX_ROWS,
    PARAM_RETENTION_DAYS,
)
from .rights import MANAGER, guarded


class MqttWorkshopSettings(models.TransientModel):
    _name = "mqtt.workshop.settings"
    _description = "Workshop Settings"

    company_id = fields.Many2one(
        "res.company", default=lambda self: self.env.company, readonly=True
    )
    history_retention_days = fields.Integer(
        string="Keep power history for (days)",
        default=lambda self: self.env.company.sudo().owm_history_retention_days,
        help="Every machine's power readings, for power curves and for "
        "recomputing sessions with other thresholds. 0 keeps them forever.",
    )
    message_retention_days = fields.Integer(
        string="Keep raw messages for (days)",
        default=lambda self: self._param(PARAM_RETENTION_DAYS, DEFAULT_RETENTION_DAYS),
        help="The raw log of rejected and unmatched frames, and of machines "
        "with 'Log Raw Messages' on. 0 keeps them forever.",
    )
    message_max_rows = fields.Integer(
        string="Keep at most (raw messages)",
        default=lambda self: self._param(PARAM_MAX_ROWS, DEFAULT_MAX_ROWS),
        help="The oldest raw messages beyond this number are dropped every night.",
    )

    @api.model
    def _param(self, key, default):
        value = self.env["ir.config_parameter"].sudo().get_param(key)
        try:
            return int(value)
        except (TypeError, ValueError):
            return default

    @api.constrains(
        "history_retention_days", "message_retention_days", "message_max_rows"
    )
    def _check_numbers(self):
        for rec in self:
            if (
                min(
                    rec.history_retention_days,
                    rec.message_retention_days,
                    rec.message_max_rows,
                )
                < 0
            ):
                raise ValidationError(_("Days and rows cannot be negative."))

    @guarded(MANAGER, "write")
    def action_save(self):
        """Keep these settings (the company's history, the database's log)."""
        self.ensure_one()
        self.company_id.sudo().owm_history_retention_days = self.history_retention_days
        params = self.env["ir.config_parameter"].sudo()
        params.set_param(PARAM_RETENTION_DAYS, self.message_retention_days)
        params.set_param(PARAM_MAX_ROWS, self.message_max_rows)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "message": _("Workshop settings saved."),
                "type": "success",
                "next": {"type": "ir.actions.act_window_close"},
            },
        }
