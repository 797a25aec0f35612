"""The tests, mirroring the packages: parsers/, services/{engine,mqtt,runner}/,
models/, browser/, tools/ and e2e/ (README, "Testing").

pytest collects them all; the Odoo-layer ones (models/, services/runner/,
browser/) need pytest-odoo (``--odoo-database``, ``--odoo-http``).  Odoo's
own test runner runs those too, while it installs the addon in CI (pytest-odoo
runs everything after installation; Odoo's runner also catches what only
shows during an install).  For it, this package, imported as
``odoo.addons.open_workshop_mqtt.tests``, names the Odoo-layer test modules;
imported any other way it imports nothing (no Odoo).
"""

if __name__.startswith("odoo.addons."):
    from .browser import test_tour_live_board, test_tour_power_curve
    from .models import (
        test_connection,
        test_dashboard,
        test_device,
        test_i18n,
        test_message,
        test_security,
        test_security_company,
        test_security_rpc,
        test_security_secrets,
        test_session,
    )
    from .services.runner import test_writer
