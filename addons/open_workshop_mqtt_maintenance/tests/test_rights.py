# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Every public method of this addon has a written rule and keeps it: the
main addon's walk (open_workshop_mqtt/tests/rights_walk.py) over this
addon's classes."""

from datetime import date, timedelta

from odoo.tests import tagged

from odoo.addons.open_workshop_mqtt.tests.common import WorkshopCase
from odoo.addons.open_workshop_mqtt.tests.rights_walk import RightsWalk


@tagged("post_install", "-at_install")
class TestEveryPublicMethodKeepsItsRule(RightsWalk, WorkshopCase):
    ADDON = "odoo.addons.open_workshop_mqtt_maintenance."
    TABLES = (
        "maintenance_equipment",
        "maintenance_request",
        "mqtt_maintenance_plan",
        "mqtt_maintenance_guard",
        "mqtt_device",
        "mail_activity",
    )
    KNOWN = (
        ("mqtt.device", "action_create_equipment"),
        ("mqtt.maintenance.plan", "action_check_now"),
        ("mqtt.maintenance.guard", "action_watch_now"),
        ("mqtt.utilisation", "action_open"),
    )
    ARGS = {"write": ({"note": "<p>Taken over</p>"},)}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_walkers("maintenance.group_equipment_manager")
        cls.device.company_id = cls.env.company
        equipment = cls.env["maintenance.equipment"].create(
            {"name": "Band saw", "mqtt_device_id": cls.device.id}
        )
        plan = cls.env["mqtt.maintenance.plan"].create(
            {
                "name": "Blade",
                "equipment_id": equipment.id,
                "interval_days": 1,
                "base_date": date.today() - timedelta(days=2),
            }
        )
        request = plan._check_due()
        guard = cls.env["mqtt.maintenance.guard"].create(
            {"device_id": cls.device.id, "kind": "long_session", "threshold_minutes": 1}
        )
        action = cls.env["mqtt.utilisation"].with_user(cls.manager).action_open(weeks=1)
        rows = cls.env["mqtt.utilisation"].search(action["domain"])
        cls.records = {
            "mqtt.utilisation": rows,
            "maintenance.equipment": equipment,
            "maintenance.request": request,
            "mqtt.maintenance.plan": plan,
            "mqtt.maintenance.guard": guard,
            "mqtt.device": cls.device,
        }
        cls.create_values = {
            "maintenance.equipment": {
                "name": "Into A",
                "mqtt_device_id": cls.device.id,
                "company_id": cls.env.company.id,
            },
            "maintenance.request": {
                "name": "Into A",
                "mqtt_plan_id": plan.id,
                "company_id": cls.env.company.id,
            },
            "mqtt.maintenance.plan": {
                "name": "Into A",
                "equipment_id": equipment.id,
                "interval_days": 1,
            },
            "mqtt.maintenance.guard": {"device_id": cls.device.id, "kind": "silent"},
            "mqtt.utilisation": {"device_id": cls.device.id},
        }
        assert request, "the plan was due"

    def test_another_company_sees_no_utilisation_of_ours(self):
        env = self.env(user=self.manager_b)
        action = env["mqtt.utilisation"].action_open(weeks=1)
        rows = env["mqtt.utilisation"].search(action["domain"])
        self.assertNotIn(self.device, rows.sudo().device_id)
        self.assertNotIn(self.device.name, repr(rows.read(["device_id"])))
