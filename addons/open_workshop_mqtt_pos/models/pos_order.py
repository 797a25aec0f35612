# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Orders that charge machine sessions (models/mqtt_session.py says how a
session is charged at most once)."""

import logging

from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from odoo.addons.open_workshop_mqtt.models.rights import guarded

_logger = logging.getLogger(__name__)

PAID = ("paid", "done", "invoiced")


class PosOrderLine(models.Model):
    _inherit = "pos.order.line"

    mqtt_session_id = fields.Many2one(
        "mqtt.session",
        string="Machine Session",
        index="btree_not_null",
        readonly=True,
        copy=False,
        ondelete="restrict",
    )

    @api.model
    def _load_pos_data_fields(self, config_id):
        return super()._load_pos_data_fields(config_id) + ["mqtt_session_id"]

    @api.model_create_multi
    @guarded(None, "create")
    def create(self, vals_list):
        if not self.env.su:
            for vals in vals_list:
                if vals.get("mqtt_session_id"):
                    self._owm_check_session(vals)
        return super().create(vals_list)

    @guarded(None, "write")
    def write(self, vals):
        if not self.env.su and "mqtt_session_id" in vals:
            raise AccessError(_("A line's machine session is set when it is added."))
        return super().write(vals)

    @api.model
    def _owm_check_session(self, vals):
        """A line names a session its cashier may see, of its order's company."""
        session = self.env["mqtt.session"].browse(vals["mqtt_session_id"]).exists()
        if not session:
            raise UserError(_("This machine session no longer exists."))
        session.check_access("read")
        order = self.env["pos.order"].sudo().browse(vals.get("order_id"))
        if session.sudo().company_id and session.sudo().company_id != order.company_id:
            raise AccessError(_("This machine session is another company's."))


class PosOrder(models.Model):
    _inherit = "pos.order"

    @api.model
    def _process_order(self, order, existing_order):
        order_id = super()._process_order(order, existing_order)
        pos_order = self.browse(order_id)
        if pos_order.state in PAID:
            pos_order.sudo()._owm_charge()
        return order_id

    def _owm_charge(self):
        """A paid order charges its sessions and frees the ones it refunds."""
        self.ensure_one()
        lines = self.lines
        refunds = lines.filtered(
            lambda line: line.qty < 0 and line.refunded_orderline_id.mqtt_session_id
        )
        charging = lines.filtered(lambda line: line.qty > 0 and line.mqtt_session_id)
        sessions = (
            charging.mqtt_session_id | refunds.refunded_orderline_id.mqtt_session_id
        )
        if not sessions:
            return
        # One charge per session: its row is locked while it is looked at.
        # (Two orders at once: the later one fails to serialize here and Odoo
        # syncs it again, when it finds the session charged: not an error.)
        self.env.cr.execute(
            "SELECT id FROM mqtt_session WHERE id IN %s ORDER BY id FOR UPDATE",
            (tuple(sessions.ids),),
            log_exceptions=False,
        )
        sessions.invalidate_recordset()
        for line in refunds:
            session = line.refunded_orderline_id.mqtt_session_id
            line.mqtt_session_id = session
            if self._owm_frees(line, session):
                session.write({"pos_order_line_id": False})
        doubles = []
        for line in charging:
            session = line.mqtt_session_id
            if self._owm_elsewhere(session, line):
                doubles.append((line, session))
                continue
            values = {
                "pos_order_line_id": line.id,
                "pos_reserved_uuid": False,
                "pos_reserved_session_id": False,
            }
            if self.partner_id:
                values["partner_id"] = self.partner_id.id
            session.write(values)
        for line, session in doubles:
            self._owm_charged_twice(line, session)
        sessions._notify_tills()

    def _owm_frees(self, line, session):
        """Whether refund ``line`` gives back the whole line that charged
        ``session`` (same company, price, discount; all of its quantity)."""
        charged = line.refunded_orderline_id
        if session.pos_order_line_id != charged:
            return False
        if charged.order_id.company_id != self.company_id:
            return False
        if line.price_unit != charged.price_unit or (line.discount or 0.0) != (
            charged.discount or 0.0
        ):
            return False
        refunded = sum(
            -r.qty for r in charged.refund_orderline_ids if r.order_id.state in PAID
        )
        return refunded >= charged.qty

    def _owm_elsewhere(self, session, line):
        """Whether ``session`` is not this order's to charge: charged by
        another line, held by another open till's order, or another
        company's."""
        if session.pos_order_line_id and session.pos_order_line_id != line:
            return True
        if session.company_id and session.company_id != self.company_id:
            return True
        holder = session.pos_reserved_session_id
        return bool(
            session.pos_reserved_uuid
            and session.pos_reserved_uuid != self.uuid
            and holder.state == "opened"
        )

    def _owm_charged_twice(self, line, session):
        """A line of a session another order charged: kept without the session
        (the money was taken, the session is not charged again), told to the
        managers on the order."""
        other = session.pos_order_line_id.order_id
        _logger.warning(
            "Order %s has machine session %s, which is not its to charge "
            "(charged by %s, or held by another till, or another company's): "
            "its line keeps no session",
            self.name,
            session.id,
            other.name or "-",
        )
        line.mqtt_session_id = False
        if other:
            text = _(
                "%(machine)s, session of %(start)s, was charged by %(other)s "
                "already: this line did not charge it again. Refund one of them.",
                machine=session.device_id.name,
                start=fields.Datetime.to_string(session.start_time),
                other=other.name,
            )
        else:
            text = _(
                "A line named a machine session this order may not charge (held "
                "by another till, or another company's): it did not charge it."
            )
        self.message_post(
            body=Markup("<p>%s</p>") % text,
            message_type="comment",
            subtype_xmlid="mail.mt_note",
        )
