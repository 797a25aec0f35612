# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Charged at most once: a till holds a session while it is on an order, a
paid order charges it and sets its member, a second order never charges it
again, a refund frees it, a closed till lets go.  Two tills at the same
moment: test_charge_race.py."""

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .common import TillCase


@tagged("post_install", "-at_install")
class TestChargedAtMostOnce(TillCase):
    def test_a_paid_order_charges_the_session_and_sets_its_member(self):
        session = self.closed_session(working_s=1800.0)
        self.assertEqual(session.price, 6.0)
        result = session.pos_reserve("order-1", self.pos_session.id)
        self.assertEqual(result, {"reserved": [session.id], "refused": []})
        self.assertEqual(session.pos_reserved_uuid, "order-1")
        (order,) = self.sync(
            self.order_data(session, customer=self.member, uuid="order-1")
        )
        line = order.lines
        self.assertEqual(line.mqtt_session_id, session)
        self.assertEqual(session.pos_order_line_id, line)
        self.assertTrue(session.pos_charged)
        self.assertEqual(session.partner_id, self.member)
        self.assertFalse(session.pos_reserved_uuid)
        self.assertEqual(session.price, 6.0)
        # The rates change: a charged session keeps what it was charged.
        self.machine.sudo().rate_working_hour = 100.0
        self.assertEqual(session.price, 6.0)
        self.assertEqual(self.closed_session(working_s=1800.0).price, 50.0)

    def test_a_session_held_charged_or_running_is_refused(self):
        held, charged = self.closed_session(), self.closed_session()
        running = self.closed_session(state="running", end_ts=False, end_time=False)
        held.pos_reserve("order-A", self.pos_session.id)
        charged.pos_reserve("order-B", self.pos_session.id)
        self.sync(self.order_data(charged, uuid="order-B"))
        result = (held | charged | running).pos_reserve("order-C", self.pos_session.id)
        self.assertEqual(result["reserved"], [])
        reasons = {r["id"]: r["reason"] for r in result["refused"]}
        self.assertIn("another till", reasons[held.id])
        self.assertIn("charged already", reasons[charged.id])
        self.assertIn("still running", reasons[running.id])
        # Its own order may ask again; released, anyone may.
        self.assertEqual(
            held.pos_reserve("order-A", self.pos_session.id)["reserved"], held.ids
        )
        held.pos_release("order-C", self.pos_session.id)  # not its holder
        self.assertEqual(held.pos_reserved_uuid, "order-A")
        held.pos_release("order-A", self.pos_session.id)
        self.assertEqual(
            held.pos_reserve("order-C", self.pos_session.id)["reserved"], held.ids
        )

    def test_a_second_order_never_charges_it_again(self):
        session = self.closed_session()
        (first,) = self.sync(self.order_data(session))
        # A forged, or a late (offline) order with the same session: the order
        # stands, its line does not charge the session, the managers are told.
        (second,) = self.sync(self.order_data(session))
        self.assertEqual(second.state, "paid")
        self.assertFalse(second.lines.mqtt_session_id)
        self.assertEqual(session.pos_order_line_id, first.lines)
        notes = second.message_ids.mapped("body")
        self.assertTrue(any("charged by" in (n or "") for n in notes), notes)
        # Twice in one order: one line charges it.
        other = self.closed_session()
        (both,) = self.sync(self.order_data(other | other))
        self.assertEqual(len(both.lines.filtered("mqtt_session_id")), 1)
        self.assertEqual(other.pos_order_line_id.order_id, both)

    def test_a_refund_frees_it(self):
        session = self.closed_session()
        (order,) = self.sync(self.order_data(session))
        (refund,) = self.sync(self.order_data(None, refund_of=order.lines))
        self.assertFalse(session.pos_charged)
        self.assertFalse(session.pos_order_line_id)
        self.assertEqual(refund.lines.mqtt_session_id, session)
        # Free again: added and charged anew.
        self.assertEqual(
            session.pos_reserve("order-2", self.pos_session.id)["reserved"], session.ids
        )
        (again,) = self.sync(self.order_data(session, uuid="order-2"))
        self.assertEqual(session.pos_order_line_id, again.lines)

    def test_closing_the_till_lets_go(self):
        session = self.closed_session()
        session.pos_reserve("order-1", self.pos_session.id)
        self.pos_session.post_closing_cash_details(0)
        self.pos_session.close_session_from_ui()
        self.assertFalse(session.pos_reserved_uuid)
        self.assertFalse(session.pos_reserved_session_id)

    def test_a_manager_sets_the_member(self):
        session = self.closed_session()
        manager = new_test_user(
            self.env,
            login="owm_till_manager",
            groups="base.group_user,open_workshop_mqtt.group_manager",
        )
        session.with_user(manager).partner_id = self.member
        self.assertEqual(session.partner_id, self.member)
        found = self.env["mqtt.session"].search(
            [("partner_id", "=", self.member.id), ("pos_charged", "=", False)]
        )
        self.assertEqual(found, session)

    def test_only_cashiers_hold_sessions(self):
        session = self.closed_session()
        outsider = new_test_user(
            self.env, login="owm_not_cashier", groups="base.group_user"
        )
        with self.assertRaises(AccessError):
            session.with_user(outsider).pos_reserve("order-1", self.pos_session.id)
        with self.assertRaises(UserError):
            session.pos_reserve("order-1", False)

    def test_open_tills_hear_machines_and_sessions(self):
        Bus = self.env["bus.bus"].sudo()
        before = Bus.search([]).ids
        self.env["mqtt.device"]._notify_changed(self.machine.ids)
        session = self.closed_session()
        session.pos_reserve("order-1", self.pos_session.id)
        self.env.cr.precommit.run()  # (the bus writes its rows at commit)
        messages = Bus.search([("id", "not in", before)]).mapped("message")
        machines = [m for m in messages if "OWM_MACHINES" in m]
        sessions = [m for m in messages if "OWM_SESSIONS" in m]
        self.assertEqual(len(machines), 1, messages)
        self.assertIn('"current_state"', machines[0])
        self.assertTrue(any(f'"id":{session.id},' in m for m in sessions), sessions)
