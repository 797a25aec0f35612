# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A session's price: every rate, the minimum, the rounding, the currency;
and who sets the rates."""

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from odoo.addons.open_workshop_mqtt.tests.common import WorkshopCase

from ..models.pricing import Rates, billed_seconds, price


@tagged("post_install", "-at_install")
class TestPrice(WorkshopCase):
    def test_the_formula(self):
        # 1 h 10 min working, 20 min standby, 1.5 kWh.
        use = (4200.0, 1200.0, 1500.0)
        self.assertAlmostEqual(price(Rates(working_hour=12), *use), 14.0)
        self.assertAlmostEqual(price(Rates(standby_hour=3), *use), 1.0)
        self.assertAlmostEqual(price(Rates(kwh=0.4), *use), 0.6)
        self.assertAlmostEqual(
            price(Rates(working_hour=12, standby_hour=3, kwh=0.4), *use), 15.6
        )
        # The minimum when the use costs less.
        self.assertAlmostEqual(price(Rates(working_hour=12, minimum=20), *use), 20.0)
        self.assertAlmostEqual(price(Rates(working_hour=12, minimum=5), *use), 14.0)
        # Rounded up to 15 minutes each: 75 min working, 30 min standby.
        rounded = Rates(working_hour=12, standby_hour=3, rounding_minutes=15)
        self.assertAlmostEqual(price(rounded, *use), 15.0 + 1.5)
        # A whole step stays a step (float noise of summed seconds).
        self.assertEqual(billed_seconds(900.0000000001, 15), 900.0)
        self.assertEqual(billed_seconds(900.01, 15), 1800.0)
        self.assertEqual(billed_seconds(0.0, 15), 0.0)
        self.assertEqual(billed_seconds(61.0, 0), 61.0)

    def test_a_session_shows_its_price_in_the_currency(self):
        product = self.env["product.product"].create(
            {"name": "Band saw time", "type": "service", "available_in_pos": True}
        )
        self.device.write(
            {
                "pos_product_id": product.id,
                "rate_working_hour": 10.0,
                "rate_standby_hour": 1.0,
                "rate_kwh": 0.333,
                "rounding_minutes": 5,
            }
        )
        session = self.make_session(
            self.device,
            1_780_000_000.0,
            end_ts=1_780_003_000.0,
            state="closed",
            working_duration_s=1810.0,  # 35 min billed
            standby_duration_s=290.0,  # 5 min billed
            energy_wh=1000.0,
        )
        currency = self.device.pos_currency_id
        expected = currency.round(10.0 * 35 / 60 + 1.0 * 5 / 60 + 0.333)
        self.assertAlmostEqual(session.price, expected)
        self.assertEqual(session.currency_id, currency)
        # The machine's rates change: so does the price of an uncharged session.
        self.device.minimum_charge = 50.0
        self.assertEqual(session.price, 50.0)

    def test_point_of_sale_managers_set_rates_cashiers_do_not(self):
        pos_manager = new_test_user(
            self.env, login="owm_pos_manager", groups="point_of_sale.group_pos_manager"
        )
        cashier = new_test_user(
            self.env, login="owm_cashier", groups="point_of_sale.group_pos_user"
        )
        self.device.with_user(pos_manager).write({"rate_working_hour": 9.0})
        self.assertEqual(self.device.rate_working_hour, 9.0)
        with self.assertRaises(AccessError):
            self.device.with_user(pos_manager).write({"name": "Renamed"})
        with self.assertRaises(AccessError):
            self.device.with_user(cashier).write({"rate_working_hour": 1.0})
        # A workshop manager too.
        self.device.with_user(self.manager).write({"minimum_charge": 2.0})
        self.assertEqual(self.device.minimum_charge, 2.0)
