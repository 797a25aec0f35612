# Odoo-layer tests, run by Odoo's test runner (as odoo.addons.open_workshop_mqtt.tests).
# The pure tests (tests/unit) and the end-to-end tests (tests/e2e) run under plain
# pytest, which imports this package too: only Odoo's loader gets the test modules.
if __name__.startswith("odoo.addons."):
    from . import test_connection
    from . import test_device
    from . import test_session
    from . import test_security
    from . import test_message
    from . import test_flush_writer
    from . import test_tour_live_board
    from . import test_dashboard
    from . import test_i18n
    from . import test_security_rpc
    from . import test_security_company
    from . import test_security_secrets
