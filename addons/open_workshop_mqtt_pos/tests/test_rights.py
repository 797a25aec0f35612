# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Every public method of this addon has a written rule and keeps it: the
main addon's walk (open_workshop_mqtt/tests/rights_walk.py) over this
addon's classes; a cashier of another company holds none of ours."""

from odoo.tests import new_test_user, tagged

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
        "pos_release": ("an-order",),
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_b = cls.env["res.company"].create({"name": "Other workshop"})
        cls.outsider = new_test_user(
            cls.env, login="owm_outsider", groups="base.group_user"
        )
        cls.manager_b = new_test_user(
            cls.env,
            login="owm_manager_of_b",
            groups="base.group_user,open_workshop_mqtt.group_manager,"
            "point_of_sale.group_pos_manager",
            company_id=cls.company_b.id,
            company_ids=[(6, 0, cls.company_b.ids)],
        )
        cls.device.company_id = cls.env.company
        cls.session = cls.make_session(
            cls,
            cls.device,
            1_780_000_000.0,
            end_ts=1_780_000_600.0,
            state="closed",
            working_duration_s=500.0,
        )
        cls.records = {"mqtt.device": cls.device, "mqtt.session": cls.session}
        cls.create_values = {}
