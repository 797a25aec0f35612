# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A session at the counter: its member, its price, the order line that
charged it, and the till that holds it meanwhile.

Charged at most once, on the server:

* a till *reserves* a closed session when the cashier adds it to an order
  (``pos_reserve``): one atomic update that succeeds only when the session is
  neither charged nor held by another open till's order; two tills at the
  same moment: one wins, the other is told;
* a paid order *charges* its sessions (``pos.order._owm_charge``): each
  session row is locked and points to the one line that charged it
  (``pos_order_line_id``); a line of a session that is charged already
  (a forged or a late order) is kept without the session and named for the
  managers, never charged twice;
* a refund of that line frees the session; removing the line, or closing the
  till's session, releases the reservation.
"""

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from odoo.addons.open_workshop_mqtt.models.rights import guarded

from .pricing import price

POS_USER = "point_of_sale.group_pos_user"
# What a till reads of a session.
TILL_FIELDS = [
    "id",
    "device_id",
    "state",
    "start_time",
    "end_time",
    "working_duration_s",
    "standby_duration_s",
    "energy_wh",
    "price",
    "partner_id",
    "partner_name",
    "pos_charged",
    "pos_reserved_uuid",
]
SESSIONS_NOTIFICATION = "OWM_SESSIONS"
# What holding and charging a session is, in the database.
HOLD_FIELDS = ["pos_order_line_id", "pos_reserved_uuid", "pos_reserved_session_id"]
# Written by the tills' server code alone (as superuser).
SERVER_FIELDS = frozenset({*HOLD_FIELDS, "price", "pos_charged"})
# A till lists the uncharged sessions of this many past days.
TILL_DAYS = 14


class MqttSession(models.Model):
    _name = "mqtt.session"
    _inherit = ["mqtt.session", "pos.load.mixin"]

    partner_id = fields.Many2one(
        "res.partner",
        string="Member",
        index="btree_not_null",
        help="Who used the machine: the customer of the order that charged the "
        "session, or set by a manager.",
    )
    partner_name = fields.Char(related="partner_id.name", string="Member Name")
    currency_id = fields.Many2one(
        "res.currency", related="device_id.pos_currency_id", string="Currency"
    )
    price = fields.Monetary(
        compute="_compute_price",
        store=True,
        currency_field="currency_id",
        help="By the machine's rates; once charged, what the order charged.",
    )
    pos_order_line_id = fields.Many2one(
        "pos.order.line",
        string="Charged On",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="set null",
        help="The paid order line that charged this session (none: not charged, "
        "or charged and refunded).",
    )
    pos_order_id = fields.Many2one(
        related="pos_order_line_id.order_id", string="Charged in Order"
    )
    pos_charged = fields.Boolean(
        string="Charged",
        compute="_compute_pos_charged",
        store=True,
        index=True,
    )
    pos_reserved_uuid = fields.Char(
        string="Held by Order", readonly=True, copy=False, index="btree_not_null"
    )
    pos_reserved_session_id = fields.Many2one(
        "pos.session", string="Held by Till", readonly=True, copy=False
    )

    @api.depends("pos_order_line_id")
    def _compute_pos_charged(self):
        for session in self:
            session.pos_charged = bool(session.pos_order_line_id)

    @api.depends(
        "working_duration_s",
        "standby_duration_s",
        "energy_wh",
        "device_id.rate_working_hour",
        "device_id.rate_standby_hour",
        "device_id.rate_kwh",
        "device_id.minimum_charge",
        "device_id.rounding_minutes",
        "pos_order_line_id.price_unit",
        "pos_order_line_id.discount",
    )
    def _compute_price(self):
        if any(isinstance(s.id, models.NewId) for s in self):
            # A form's draft (an onchange) sees the rates of machines its
            # user may read only (stored computes run as superuser).
            self.env(su=False)["mqtt.device"].browse(self.device_id.ids).check_access(
                "read"
            )
        rates_of, currency_of = {}, {}  # per machine: the runner computes many at once
        for session in self:
            line = session.pos_order_line_id
            if line:
                session.price = line.price_unit * (1.0 - (line.discount or 0.0) / 100.0)
                continue
            machine = session.device_id
            if not machine:
                session.price = 0.0
                continue
            rates = rates_of.get(machine)
            if rates is None:
                rates = rates_of[machine] = machine._pos_rates()
            amount = price(
                rates,
                session.working_duration_s,
                session.standby_duration_s,
                session.energy_wh,
            )
            if amount:
                if machine not in currency_of:
                    currency_of[machine] = machine.pos_currency_id
                amount = currency_of[machine].round(amount)
            session.price = amount

    # -- the tills ---------------------------------------------------------------------
    @api.model
    def _load_pos_data_domain(self, data):
        machines = [m["id"] for m in data.get("mqtt.device", {}).get("data", [])]
        since = fields.Datetime.subtract(fields.Datetime.now(), days=TILL_DAYS)
        return [
            ("device_id", "in", machines),
            "|",
            ("state", "=", "running"),
            "&",
            ("pos_charged", "=", False),
            ("start_time", ">=", since),
        ]

    @api.model
    def _load_pos_data_fields(self, config_id):
        return list(TILL_FIELDS)

    def _notify_tills(self, removed=()):
        """Push these sessions, and ``removed`` ones ((session id, machine id)
        pairs), to the open tills of their machines' company only."""
        configs = self.env["pos.session"].sudo()._owm_open_configs()
        if not configs or not (self or removed):
            return
        upsert = self.sudo().filtered(lambda s: s.device_id.pos_product_id)
        rows = dict(zip(upsert, upsert.read(TILL_FIELDS, load=False), strict=True))
        machines = self.env["mqtt.device"].sudo().browse({m for _s, m in removed})
        company_of = {m.id: m.company_id for m in machines}
        for config in configs:

            def theirs(company, config=config):
                return not company or company == config.company_id

            payload = {
                "upsert": [row for s, row in rows.items() if theirs(s.company_id)],
                "remove_ids": [
                    sid for sid, machine in removed if theirs(company_of[machine])
                ],
            }
            if payload["upsert"] or payload["remove_ids"]:
                config._notify(SESSIONS_NOTIFICATION, payload)

    def _on_sessions_closed(self, origin, changes=()):
        result = super()._on_sessions_closed(origin, changes)
        self._notify_tills(
            removed=[(c.session_id, c.device_id) for c in changes if c.after is None]
        )
        return result

    @api.model
    def _server_fields(self):
        return super()._server_fields() | SERVER_FIELDS

    @guarded(POS_USER, "read")
    def pos_reserve(self, order_uuid, pos_session_id):
        """Hold these closed sessions for the order ``order_uuid`` of the
        till's session ``pos_session_id``; returns ``{"reserved": [ids],
        "refused": [{"id", "reason"}]}`` (a session charged, held by another
        order, or still running is refused, with the reason)."""
        if not order_uuid:
            raise UserError(_("Open the till's session first."))
        till = self._owm_till(pos_session_id)
        self.flush_model(HOLD_FIELDS)
        reserved, refused = [], []
        for session in self:
            reason = self._owm_refusal(session)
            if reason is None:
                self.env.cr.execute(
                    """
                    UPDATE mqtt_session
                       SET pos_reserved_uuid = %(uuid)s,
                           pos_reserved_session_id = %(till)s
                     WHERE id = %(id)s
                       AND pos_order_line_id IS NULL
                       AND (pos_reserved_uuid IS NULL
                            OR pos_reserved_uuid = %(uuid)s
                            OR pos_reserved_session_id IS NULL
                            OR pos_reserved_session_id IN (
                                SELECT id FROM pos_session WHERE state != 'opened'))
                 RETURNING id
                    """,
                    {"uuid": order_uuid, "till": till.id, "id": session.id},
                    # Two tills at once: the later one's update fails to
                    # serialize and Odoo tries its request again, which then
                    # finds the session held. Expected: not logged as an error.
                    log_exceptions=False,
                )
                if self.env.cr.fetchone():
                    reserved.append(session.id)
                    continue
                session.invalidate_recordset()
                reason = self._owm_refusal(session) or _("It is held by another till.")
            refused.append({"id": session.id, "reason": reason})
        self.invalidate_recordset(["pos_reserved_uuid", "pos_reserved_session_id"])
        if reserved:
            self.browse(reserved)._notify_tills()
        return {"reserved": reserved, "refused": refused}

    @api.model
    def _owm_till(self, pos_session_id):
        """The caller's open till session ``pos_session_id``, of the
        sessions' company."""
        till = self.env["pos.session"].browse(pos_session_id).exists()
        if not till or till.state != "opened":
            raise UserError(_("Open the till's session first."))
        till.check_access("read")
        if any(s.company_id and s.company_id != till.company_id for s in self.sudo()):
            raise AccessError(_("These sessions are another company's."))
        return till

    @api.model
    def _owm_refusal(self, session):
        """Why ``session`` cannot be added to an order now (None: it can)."""
        session = session.sudo()
        if session.state != "closed":
            return _("%s is still running: stop it first.", session.device_id.name)
        if session.pos_order_line_id:
            return _(
                "It is charged already (%s).", session.pos_order_line_id.order_id.name
            )
        if not session.device_id.pos_product_id:
            return _("%s has no product for the counter.", session.device_id.name)
        return None

    @guarded(POS_USER, "read")
    def pos_release(self, order_uuid, pos_session_id):
        """The order ``order_uuid`` of the till's session ``pos_session_id``
        no longer holds these sessions (another till's holds stay)."""
        if not self or not order_uuid:
            return True
        till = self._owm_till(pos_session_id)
        self.flush_model(HOLD_FIELDS)
        self.env.cr.execute(
            "UPDATE mqtt_session SET pos_reserved_uuid = NULL, "
            "pos_reserved_session_id = NULL "
            "WHERE id IN %s AND pos_reserved_uuid = %s "
            "AND pos_reserved_session_id = %s RETURNING id",
            (tuple(self.ids), order_uuid, till.id),
        )
        released = [row[0] for row in self.env.cr.fetchall()]
        self.invalidate_recordset(["pos_reserved_uuid", "pos_reserved_session_id"])
        self.browse(released)._notify_tills()
        return True
