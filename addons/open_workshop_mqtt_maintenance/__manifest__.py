# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "Open Workshop MQTT: Maintenance",
    "summary": "Maintenance by working hours: usage meters from machine sessions, "
    "preventive plans, guards for machines nobody watches, utilisation",
    "version": "18.0.1.0.0",
    "development_status": "Beta",
    "category": "Manufacturing/Maintenance",
    "website": "https://github.com/open-workshop/open_workshop_mqtt",
    "author": "Open Workshop MQTT developers",
    "maintainers": [],
    "license": "AGPL-3",
    "installable": True,
    "auto_install": True,
    "depends": ["open_workshop_mqtt", "maintenance", "resource"],
    "data": [
        "security/ir.model.access.csv",
        "security/maintenance_security.xml",
        "data/ir_cron_data.xml",
        "views/maintenance_equipment_views.xml",
        "views/mqtt_maintenance_plan_views.xml",
        "views/mqtt_maintenance_guard_views.xml",
        "views/mqtt_device_views.xml",
        "views/mqtt_utilisation_views.xml",
        "views/menus.xml",
    ],
    "demo": ["demo/maintenance_demo.xml"],
    "assets": {
        "web.assets_tests": [
            "open_workshop_mqtt_maintenance/static/tests/tours/**/*",
        ],
    },
}
