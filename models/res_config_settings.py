# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    owm_history_retention_days = fields.Integer(
        related="company_id.owm_history_retention_days", readonly=False
    )
