"""Harness basics: free ports, bounded waits, the Odoo python and addons path."""

import contextlib
import functools
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
ADDON = "open_workshop_mqtt"
# The repository's other addons: the bridges (addons/) and the example of the
# session hook that the test databases install too (tests/addons/).
EXTRA_ADDONS_DIRS = (ROOT / "addons", ROOT / "tests" / "addons")
HOOK_EXAMPLE = "owm_session_hook_example"


def bridge_addons():
    """The bridge addons of addons/ (each folder with a manifest), sorted:
    every test database installs them, as ``run-tests.sh`` does."""
    folder = ROOT / "addons"
    if not folder.is_dir():
        return []
    return sorted(p.parent.name for p in folder.glob("*/__manifest__.py"))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.2):
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # keep polling; report the last failure
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:g} s waiting for {what} (last: {last!r})"
    )


def port_open(port, host="127.0.0.1"):
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
        return True
    return False


def odoo_python():
    return os.environ.get("OWM_PYTHON") or sys.executable


@functools.cache
def odoo_command():
    """Odoo's own entry point with its Python (why: ``tools/odoo_entry.py``)."""
    python = odoo_python()
    out = subprocess.run(
        [python, str(ROOT / "tools" / "odoo_entry.py")],
        check=True,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    ).stdout.strip()
    return [python, out.splitlines()[-1]]


def addon_link_dir():
    """A folder where this checkout is named open_workshop_mqtt, whatever its
    own folder is called (Odoo and Python know the addon by that name)."""
    link_dir = (
        pathlib.Path(tempfile.gettempdir()) / f"owm-addons-{os.getuid()}-{ROOT.name}"
    )
    link_dir.mkdir(exist_ok=True)
    link = link_dir / ADDON
    if not link.exists():
        link.symlink_to(ROOT)
    return link_dir


def import_addon():
    """The addon package for a tool that uses its pure layers (parsers, the
    engine), imported by its one name ``open_workshop_mqtt``: outside Odoo it
    imports nothing of Odoo (its ``__init__``)."""
    import importlib

    link_dir = str(addon_link_dir())
    if link_dir not in sys.path:
        sys.path.insert(0, link_dir)
    return importlib.import_module(ADDON)


def addons_path():
    """The Odoo addons, a folder where this checkout is named
    open_workshop_mqtt, and the repository's other addons."""
    if os.environ.get("OWM_ADDONS_PATH"):
        return os.environ["OWM_ADDONS_PATH"]
    extra = [str(folder) for folder in EXTRA_ADDONS_DIRS if folder.is_dir()]
    return ",".join([odoo_default_addons_path(), str(addon_link_dir()), *extra])


ODOO_ADDONS_SNIPPET = (
    "from odoo.tools import config; config.parse_config([]); "
    "print(config['addons_path'])"
)


def odoo_default_addons_path():
    """Odoo's own addons folders, as its configuration computes them."""
    out = subprocess.run(
        [odoo_python(), "-c", ODOO_ADDONS_SNIPPET],
        check=True,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    ).stdout.strip()
    return out.splitlines()[-1]


# -- broker -------------------------------------------------------------------
def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)
