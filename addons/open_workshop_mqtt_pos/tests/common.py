# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""An open till (point_of_sale's TestPoSCommon) and a machine sold at it."""

from odoo.addons.point_of_sale.tests.common import TestPoSCommon

T0 = 1_780_000_000.0


class TillCase(TestPoSCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.config = cls.basic_config
        cls.machine_time = cls.env["product.product"].create(
            {
                "name": "Laser time",
                "type": "service",
                "available_in_pos": True,
                "list_price": 0.0,
                "taxes_id": [(5, 0, 0)],
            }
        )
        # (The till's user is no workshop manager: the workshop is set up as
        # superuser.)
        connection = (
            cls.env["mqtt.connection"]
            .sudo()
            .create({"name": "Till broker", "host": "127.0.0.1", "auto_start": False})
        )
        cls.machine = (
            cls.env["mqtt.device"]
            .sudo()
            .create(
                {
                    "name": "Laser",
                    "connection_id": connection.id,
                    "topic_prefix": "shellypmminig3-00000000a0a0",
                    "pos_product_id": cls.machine_time.id,
                    "rate_working_hour": 12.0,
                    "minimum_charge": 1.0,
                }
            )
        )
        cls.member = cls.env["res.partner"].create({"name": "Ada Member"})

    def setUp(self):
        super().setUp()
        self.open_new_session()
        self.n = 0

    def closed_session(self, working_s=1800.0, **vals):
        self.n += 1
        start = T0 + self.n * 10_000
        values = {
            "device_id": self.machine.id,
            "start_ts": start,
            "start_time": _utc(start),
            "end_ts": start + working_s + 60,
            "end_time": _utc(start + working_s + 60),
            "last_update_ts": start + working_s + 60,
            "working_duration_s": working_s,
            "standby_duration_s": 60.0,
            "state": "closed",
            "end_reason": "power_drop",
        }
        values.update(vals)
        return self.env["mqtt.session"].sudo().create(values).sudo(False)

    def order_data(self, sessions, customer=False, refund_of=None, uuid=None):
        """A paid order of the till with one line per session (at its price),
        or refunding the lines ``refund_of``; ``uuid``: the order's (the one
        its till held the sessions for)."""
        if refund_of:
            params = [
                {
                    "product": line.product_id,
                    "quantity": -1,
                    "refunded_orderline_id": line.id,
                }
                for line in refund_of
            ]
            prices = [line.price_unit for line in refund_of]
        else:
            params = [
                {"product": self.machine_time, "quantity": 1, "mqtt_session_id": s.id}
                for s in sessions
            ]
            prices = [s.price for s in sessions]
        data = self.create_ui_order_data(
            params, customer=customer, payments=[], uuid=uuid
        )
        total = 0.0
        for line, unit in zip(data["lines"], prices, strict=True):
            values = line[2]
            values["price_unit"] = unit
            values["price_subtotal"] = values["price_subtotal_incl"] = (
                unit * values["qty"]
            )
            total += unit * values["qty"]
        data.update(amount_total=total, amount_paid=total, amount_tax=0.0)
        data["payment_ids"] = [
            (
                0,
                0,
                {"amount": total, "name": "now", "payment_method_id": self.cash_pm1.id},
            )
        ]
        data["state"] = "paid"
        return data

    def sync(self, *orders):
        result = self.env["pos.order"].sync_from_ui(list(orders))
        return self.env["pos.order"].browse([o["id"] for o in result["pos.order"]])


def _utc(ts):
    from odoo.addons.open_workshop_mqtt.services.engine.timebase import to_utc

    return to_utc(ts)
