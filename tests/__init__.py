# Odoo-layer tests (run by Odoo's test runner). The pure tests in tests/unit and
# the end-to-end tests in tests/e2e run under plain pytest (see run-tests.sh).
from . import test_connection
from . import test_device
from . import test_session
from . import test_security
from . import test_message
