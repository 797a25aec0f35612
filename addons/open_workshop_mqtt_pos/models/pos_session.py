# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A till's session loads the machines and their sessions, and releases
the sessions its orders still hold when it closes."""

from odoo import api, models


class PosSession(models.Model):
    _inherit = "pos.session"

    @api.model
    def _load_pos_data_models(self, config_id):
        return super()._load_pos_data_models(config_id) + [
            "mqtt.device",
            "mqtt.session",
        ]

    @api.model
    def _owm_open_configs(self):
        """The shops with an open till (the ones to tell about machines)."""
        return self.search([("state", "!=", "closed")]).config_id

    def _validate_session(
        self,
        balancing_account=False,
        amount_to_balance=0,
        bank_payment_method_diffs=None,
    ):
        result = super()._validate_session(
            balancing_account, amount_to_balance, bank_payment_method_diffs
        )
        held = (
            self.env["mqtt.session"]
            .sudo()
            .search([("pos_reserved_session_id", "in", self.ids)])
        )
        held.write({"pos_reserved_uuid": False, "pos_reserved_session_id": False})
        held._notify_tills()
        return result
