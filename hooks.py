# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Addon hooks."""


def post_load():
    """Server-wide load: patch the server so the MQTT runner starts with it.

    Odoo calls this only when open_workshop_mqtt is in server_wide_modules;
    loaded as an ordinary addon, no runner exists (the connection form says so).
    """
    import odoo

    if "open_workshop_mqtt" not in odoo.conf.server_wide_modules:
        return  # loaded as an ordinary addon (registry load): no runner here
    from .services.runner import hosting

    hosting.install()
