# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "Open Workshop MQTT: session hook example",
    "summary": "A runnable example of reacting to closed machine sessions "
    "(used by the tests)",
    "version": "18.0.1.0.0",
    "category": "Hidden/Tests",
    "website": "https://github.com/open-workshop/open_workshop_mqtt",
    "author": "Open Workshop MQTT developers",
    "license": "AGPL-3",
    "installable": True,
    "depends": ["open_workshop_mqtt"],
    "data": ["security/ir.model.access.csv"],
}
