# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A machine's price list at the counter, and its live state in the tills.

The product carries taxes and accounting; the rates say what a session
costs (models/pricing.py).  Open tills get the machines' live state over
the bus as the live board does, on the same notification of the runner
(``_notify_changed``)."""

from odoo import api, fields, models

from odoo.addons.open_workshop_mqtt.models.rights import guarded

from .mqtt_session import TILL_FIELDS as SESSION_TILL_FIELDS
from .pricing import Rates

POS_MANAGER = "point_of_sale.group_pos_manager"
POS_USER = "point_of_sale.group_pos_user"
# What a point of sale manager sets on a machine (a workshop manager too).
POS_FIELDS = frozenset(
    {
        "pos_product_id",
        "rate_working_hour",
        "rate_standby_hour",
        "rate_kwh",
        "minimum_charge",
        "rounding_minutes",
    }
)
# What a till reads of a machine (and gets pushed when it changes).
TILL_FIELDS = [
    "id",
    "name",
    "location",
    "current_state",
    "current_power_w",
    "state_since",
    "online",
    "last_message_time",
    "running_session_id",
    "running_since",
    "pos_product_id",
]
DEVICES_NOTIFICATION = "OWM_MACHINES"


class MqttDevice(models.Model):
    _name = "mqtt.device"
    _inherit = ["mqtt.device", "pos.load.mixin"]

    pos_product_id = fields.Many2one(
        "product.product",
        string="Point of Sale Product",
        check_company=True,
        domain="[('available_in_pos', '=', True)]",
        help="The product a session of this machine is sold as at the counter "
        "(its taxes and accounts). Without one the machine is not in the tills.",
    )
    pos_currency_id = fields.Many2one(
        "res.currency", compute="_compute_pos_currency_id", string="Currency"
    )
    rate_working_hour = fields.Monetary(
        string="Per Working Hour",
        currency_field="pos_currency_id",
        help="The price of an hour under load.",
    )
    rate_standby_hour = fields.Monetary(
        string="Per Standby Hour",
        currency_field="pos_currency_id",
        help="The price of an hour switched on and idle.",
    )
    rate_kwh = fields.Monetary(
        string="Per kWh", currency_field="pos_currency_id", help="The price of energy."
    )
    minimum_charge = fields.Monetary(
        currency_field="pos_currency_id",
        help="A session costs at least this much.",
    )
    rounding_minutes = fields.Integer(
        string="Round Up To (minutes)",
        help="Working and standby time are each rounded up to a multiple of this "
        "(0: not rounded).",
    )

    _sql_constraints = [
        (
            "pos_rates_positive",
            "CHECK(COALESCE(rate_working_hour, 0) >= 0 AND "
            "COALESCE(rate_standby_hour, 0) >= 0 AND COALESCE(rate_kwh, 0) >= 0 AND "
            "COALESCE(minimum_charge, 0) >= 0 AND COALESCE(rounding_minutes, 0) >= 0)",
            "Rates, the minimum charge and the rounding cannot be negative.",
        )
    ]

    @api.depends("company_id")
    def _compute_pos_currency_id(self):
        for machine in self:
            machine.pos_currency_id = (
                machine.company_id.currency_id or self.env.company.currency_id
            )

    def _pos_rates(self):
        self.ensure_one()
        return Rates(
            working_hour=self.rate_working_hour,
            standby_hour=self.rate_standby_hour,
            kwh=self.rate_kwh,
            minimum=self.minimum_charge,
            rounding_minutes=self.rounding_minutes,
        )

    @guarded(None, "read")
    def write(self, vals):
        """A point of sale manager sets the machines' prices (only those)."""
        if (
            not self.env.su
            and vals
            and set(vals) <= POS_FIELDS
            and self.env.user.has_group(POS_MANAGER)
        ):
            # (Their company's machines: the read check above is theirs.)
            return super(MqttDevice, self.sudo()).write(vals)
        return super().write(vals)

    @guarded(POS_USER, "read")
    def pos_stop_session(self):
        """A cashier stops these machines' running sessions now (a person's
        stop, as on the machine's form) to charge them; returns the closed
        sessions as the till reads them."""
        running = self.sudo().running_session_id
        self.sudo().action_stop_session()
        return running.read(SESSION_TILL_FIELDS, load=False)

    # -- the tills ---------------------------------------------------------------------
    @api.model
    def _load_pos_data_domain(self, data):
        company_id = data["pos.config"]["data"][0]["company_id"]
        return [
            ("pos_product_id", "!=", False),
            ("company_id", "in", [company_id, False]),
        ]

    @api.model
    def _load_pos_data_fields(self, config_id):
        return list(TILL_FIELDS)

    @api.model
    def _notify_changed(self, ids):
        """Also to the open tills, for the machines sold at a counter.  In the
        runner's flush: two indexed queries when no till is open, no read of
        the machines then."""
        result = super()._notify_changed(ids)
        configs = self.env["pos.session"].sudo()._owm_open_configs()
        if configs:
            machines = self.sudo().search(
                [("id", "in", list(ids)), ("pos_product_id", "!=", False)]
            )
            if machines:
                machines._notify_tills(configs)
        return result

    def _notify_tills(self, configs=None):
        """Push these machines' live state to the open tills of their company."""
        if configs is None:
            configs = self.env["pos.session"].sudo()._owm_open_configs()
        for config in configs:
            mine = self.filtered(
                lambda m, c=config: not m.company_id or m.company_id == c.company_id
            )
            if mine:
                config._notify(DEVICES_NOTIFICATION, mine.read(TILL_FIELDS, load=False))
