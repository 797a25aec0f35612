# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Every public method of this addon has a written rule and keeps it: the
main addon's walk (open_workshop_mqtt/tests/rights_walk.py) over this
addon's classes; a cashier of another company holds none of ours."""

from odoo.tests import tagged

from odoo.addons.open_workshop_mqtt.tests.common import WorkshopCase
from odoo.addons.open_workshop_mqtt.tests.rights_walk import RightsWalk


@tagged("post_install", "-at_install")
class TestEveryPublicMethodKeepsItsRule(RightsWalk, WorkshopCase):
    ADDON = "odoo.addons.open_workshop_mqtt_pos."
    TABLES = ("mqtt_device", "mqtt_session", "pos_order_line")
    KNOWN = (
        ("mqtt.session", "pos_reserve"),
        ("mqtt.session", "pos_release"),
        ("mqtt.device", "pos_stop_session"),
    )
    ARGS = {
        "write": ({"rate_working_hour": 99.0},),
        "pos_reserve": ("an-order", 0),
        "pos_release": ("an-order", 0),
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_walkers("point_of_sale.group_pos_manager")
        cls.device.company_id = cls.env.company
        cls.session = cls.make_session(
            cls,
            cls.device,
            1_780_000_000.0,
            end_ts=1_780_000_600.0,
            state="closed",
            working_duration_s=500.0,
        )
        # A line of an order of this company's shop.
        config = cls.env.ref("point_of_sale.pos_config_main")
        config.company_id = cls.env.company
        config.open_ui()
        product = cls.env["product.product"].create(
            {"name": "Saw time", "type": "service", "available_in_pos": True}
        )
        order = cls.env["pos.order"].create(
            {
                "session_id": config.current_session_id.id,
                "amount_tax": 0.0,
                "amount_total": 1.0,
                "amount_paid": 0.0,
                "amount_return": 0.0,
                "lines": [
                    (
                        0,
                        0,
                        {
                            "product_id": product.id,
                            "qty": 1,
                            "price_unit": 1.0,
                            "price_subtotal": 1.0,
                            "price_subtotal_incl": 1.0,
                        },
                    )
                ],
            }
        )
        cls.records = {
            "mqtt.device": cls.device,
            "mqtt.session": cls.session,
            "pos.order.line": order.lines,
        }
        cls.create_values = {
            "pos.order.line": {
                "order_id": order.id,
                "product_id": product.id,
                "mqtt_session_id": cls.session.id,
                "qty": 1,
                "price_unit": 1.0,
                "price_subtotal": 1.0,
                "price_subtotal_incl": 1.0,
            }
        }
