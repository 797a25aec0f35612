"""Pure tests: run from the repository root without Odoo.

The pure packages (``parsers``, ``services.session_detector``,
``services.mqtt_client``) are imported as top-level packages, exactly as
``python3 -c "import parsers.shelly_parser"`` does from the root.
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The shared conformance set of real Shelly payloads (present on CI machines).
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures" / "shelly"
OWN_FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
