# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A cashier, a point of sale manager or a workshop manager of company B
against company A's sessions, and anyone against a session's charge: each
attack of the hostile review (2026-12-06) is refused, or changes nothing."""

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .common import T0, TillCase, _utc


@tagged("post_install", "-at_install")
class TestAnotherCompanysSessions(TillCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_b = cls.company  # the till's company
        cls.company_a = cls.env["res.company"].create({"name": "Workshop A"})
        su = cls.env(su=True)
        connection = su["mqtt.connection"].create(
            {
                "name": "A's broker",
                "host": "127.0.0.1",
                "auto_start": False,
                "company_id": cls.company_a.id,
            }
        )
        cls.machine_a = su["mqtt.device"].create(
            {
                "name": "A's laser",
                "connection_id": connection.id,
                "company_id": cls.company_a.id,
                "topic_prefix": "shellypmminig3-0000000000aa",
                "rate_working_hour": 40.0,
            }
        )
        cls.cashier_b = new_test_user(
            cls.env,
            login="owm_cashier_b",
            groups="base.group_user,point_of_sale.group_pos_user",
            company_id=cls.company_b.id,
            company_ids=[(6, 0, cls.company_b.ids)],
        )
        cls.manager_b = new_test_user(
            cls.env,
            login="owm_workshop_manager_b",
            groups="base.group_user,open_workshop_mqtt.group_manager",
            company_id=cls.company_b.id,
            company_ids=[(6, 0, cls.company_b.ids)],
        )

    def session_a(self):
        self.n += 1
        start = T0 + 5_000_000 + self.n * 10_000
        return (
            self.env(su=True)["mqtt.session"]
            .create(
                {
                    "device_id": self.machine_a.id,
                    "start_ts": start,
                    "start_time": _utc(start),
                    "end_ts": start + 3600,
                    "end_time": _utc(start + 3600),
                    "last_update_ts": start + 3600,
                    "working_duration_s": 3600.0,
                    "state": "closed",
                    "end_reason": "power_drop",
                }
            )
            .sudo(False)
        )

    def test_a_tills_news_stay_in_a(self):
        Bus = self.env["bus.bus"].sudo()
        before = Bus.search([]).ids
        session = self.session_a()
        session.sudo()._on_sessions_closed("runner")
        self.closed_session().sudo()._on_sessions_closed("runner")  # B's own
        self.env.cr.precommit.run()
        messages = Bus.search(
            [("id", "not in", before), ("channel", "like", self.config.access_token)]
        ).mapped("message")
        self.assertTrue(any("OWM_SESSIONS" in m for m in messages), messages)
        self.assertFalse([m for m in messages if f'"id":{session.id},' in m])

    def test_a_line_names_no_session_of_another_company(self):
        data = self.order_data(self.session_a())
        with self.assertRaises(AccessError):
            self.env["pos.order"].with_user(self.cashier_b).sync_from_ui([data])
        draft = self.order_data(self.session_a())
        draft.update(state="draft", payment_ids=[], amount_paid=0.0)
        with self.assertRaises(AccessError):
            self.env["pos.order"].with_user(self.cashier_b).sync_from_ui([draft])

    def test_a_forged_refund_frees_nothing(self):
        session = self.closed_session()
        (order,) = self.sync(self.order_data(session))
        forged = self.order_data(None, refund_of=order.lines)
        values = forged["lines"][0][2]
        values.update(price_unit=0.0, price_subtotal=0.0, price_subtotal_incl=0.0)
        forged.update(amount_total=0.0, amount_paid=0.0, payment_ids=[])
        self.sync(forged)
        self.assertEqual(session.pos_order_line_id, order.lines)

    def test_nobody_writes_a_charge_by_hand(self):
        session = self.closed_session()
        (order,) = self.sync(self.order_data(session))
        manager = new_test_user(
            self.env,
            login="owm_manager_a_too",
            groups="base.group_user,open_workshop_mqtt.group_manager",
        )
        for values in (
            {"pos_order_line_id": False},
            {"price": 1.0},
            {"pos_reserved_uuid": "mine"},
            {"working_duration_s": 1.0},
        ):
            with self.assertRaises(UserError):
                session.with_user(manager).write(values)
        with self.assertRaises(UserError):
            session.with_user(manager).unlink()
        self.assertEqual(session.pos_order_line_id, order.lines)

    def test_no_session_moves_to_another_company(self):
        mine = self.env(su=True)["mqtt.session"].create(
            {
                "device_id": self.machine.id,
                "start_ts": T0,
                "start_time": _utc(T0),
                "state": "closed",
                "working_duration_s": 3_600_000.0,
            }
        )
        with self.assertRaises(UserError):  # (AccessError is one too)
            mine.with_user(self.manager_b).write({"device_id": self.machine_a.id})

    def test_an_onchange_reads_no_rates_of_another_company(self):
        """A new session's price is computed as superuser (a stored compute):
        on a machine the reader may not see it is refused, not computed."""
        Session = self.env["mqtt.session"].with_user(self.cashier_b)
        spec = {
            "device_id": {"fields": {"display_name": {}}},
            "price": {},
            "working_duration_s": {},
        }
        values = {"device_id": self.machine_a.id, "working_duration_s": 3600.0}
        try:
            result = Session.onchange(values, ["device_id"], spec)
        except AccessError:
            return
        self.assertNotEqual(result["value"].get("price"), 40.0, result)
        self.assertNotIn("A's laser", repr(result))

    def test_a_hold_is_its_tills_and_is_honoured(self):
        session = self.closed_session()
        session.pos_reserve("order-1", self.pos_session.id)
        # Releasing names the till: another till's session is refused.
        other_config = self.config.copy({"name": "Second till"})
        with self.assertRaises(UserError):
            session.pos_release("order-1", other_config.id + 10_000)
        self.assertEqual(session.pos_reserved_uuid, "order-1")
        # Another order paying it while it is held: not charged, and said.
        (intruder,) = self.sync(self.order_data(session, uuid="order-2"))
        self.assertFalse(session.pos_charged)
        self.assertFalse(intruder.lines.mqtt_session_id)
        self.assertTrue(
            any(
                "held by another till" in (m or "")
                for m in intruder.message_ids.mapped("body")
            )
        )
        (holder,) = self.sync(self.order_data(session, uuid="order-1"))
        self.assertEqual(session.pos_order_line_id, holder.lines)
