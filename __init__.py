# Odoo imports this package as odoo.addons.open_workshop_mqtt. Plain pytest (pure
# and end-to-end tests) imports it by path while collecting: it must not pull in
# the models then, they can only be loaded by Odoo.
if __name__.startswith("odoo.addons."):
    from . import models
    from .hooks import post_load
