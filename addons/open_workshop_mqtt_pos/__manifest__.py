# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "Open Workshop MQTT: Point of Sale",
    "summary": "Charge machine time at the counter: live machines in the till, "
    "sessions as order lines, each charged at most once",
    "version": "18.0.1.0.0",
    "development_status": "Beta",
    "category": "Sales/Point of Sale",
    "website": "https://github.com/open-workshop/open_workshop_mqtt",
    "author": "Open Workshop MQTT developers",
    "maintainers": [],
    "license": "AGPL-3",
    "installable": True,
    "auto_install": True,
    "depends": ["open_workshop_mqtt", "point_of_sale"],
    "data": [
        "security/ir.model.access.csv",
        "views/mqtt_device_views.xml",
        "views/mqtt_session_views.xml",
    ],
    "demo": ["demo/pos_demo.xml"],
    "assets": {
        "point_of_sale._assets_pos": [
            "open_workshop_mqtt/static/src/js/duration.js",
            "open_workshop_mqtt_pos/static/src/app/**/*",
        ],
        "web.assets_tests": [
            "open_workshop_mqtt_pos/static/tests/tours/**/*",
        ],
    },
}
