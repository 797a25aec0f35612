# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "Open Workshop MQTT",
    "summary": "Machine usage sessions from Shelly power meters over MQTT: "
    "live workshop board, sessions and analytics",
    "version": "18.0.1.0.0",
    "development_status": "Beta",
    "category": "Productivity/Workshop",
    "website": "https://github.com/open-workshop/open_workshop_mqtt",
    "author": "Open Workshop MQTT developers",
    "maintainers": [],
    "license": "AGPL-3",
    "application": True,
    "installable": True,
    "post_load": "post_load",
    "external_dependencies": {"python": ["paho-mqtt"]},
    "depends": ["base", "web", "bus", "base_setup"],
    "data": [
        "security/mqtt_security.xml",
        "security/ir.model.access.csv",
        "data/ir_cron_data.xml",
        "data/ir_config_parameter_data.xml",
        "views/mqtt_connection_views.xml",
        "views/mqtt_session_recompute_views.xml",
        "views/mqtt_device_views.xml",
        "views/mqtt_session_views.xml",
        "views/mqtt_message_views.xml",
        "views/mqtt_session_hook_failure_views.xml",
        "views/mqtt_dashboard_views.xml",
        "views/res_config_settings_views.xml",
        "views/mqtt_workshop_settings_views.xml",
        "views/menus.xml",
    ],
    "demo": [
        "data/mqtt_demo.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "open_workshop_mqtt/static/src/**/*",
        ],
        "web.assets_tests": [
            "open_workshop_mqtt/static/tests/tours/**/*",
        ],
    },
}
