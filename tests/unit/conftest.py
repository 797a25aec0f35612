"""Pure tests: run from the repository root without Odoo.

The pure packages (``parsers``, ``services.session_detector``,
``services.mqtt_client``) are imported as top-level packages, exactly as
``python3 -c "import parsers.shelly_parser"`` does from the root.  The bridge
core imports ``..parsers`` (it lives in ``services``), so it is imported as
``open_workshop_mqtt.services.bridge_core`` from a package object that points
at the root but does not run the root ``__init__.py`` (that one needs Odoo).
"""

import pathlib
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if "open_workshop_mqtt" not in sys.modules:
    _pkg = types.ModuleType("open_workshop_mqtt")
    _pkg.__path__ = [str(ROOT)]
    sys.modules["open_workshop_mqtt"] = _pkg

# The shared conformance set of real Shelly payloads (present on CI machines).
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures" / "shelly"
OWN_FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
