"""The bridges' tests run as the main addon's do (tests/conftest.py): its
markers, a test fails on a logged exception, the registry loaded outside
Odoo's test mode (so loading it does not run every installed module's
at-install tests).  Loaded by path: while pytest reads conftests, Odoo's
addons are not importable yet."""

import importlib.util
import pathlib

_path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "conftest.py"
_spec = importlib.util.spec_from_file_location("open_workshop_mqtt_conftest", _path)
_main = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_main)
globals().update(
    {name: value for name, value in vars(_main).items() if not name.startswith("__")}
)
