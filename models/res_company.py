# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import fields, models

from .mqtt_power_chunk import DEFAULT_RETENTION_DAYS


class ResCompany(models.Model):
    _inherit = "res.company"

    owm_history_retention_days = fields.Integer(
        string="Keep Power History (days)",
        default=DEFAULT_RETENTION_DAYS,
        help="How long every machine's power readings are kept, for power curves "
        "and recomputing sessions with other thresholds. 0 keeps them forever.",
    )
