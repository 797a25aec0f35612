"""What every test shares: markers, a test fails on a logged exception, and
pytest-odoo only when a database is given.

* ``pytest`` alone runs the pure tests (parsers, engine, mqtt, tools); the
  Odoo-layer tests need ``--odoo-database`` (pytest-odoo), the end-to-end
  tests a PostgreSQL and the ``mosquitto`` binary (``./run-tests.sh`` gives
  each what it needs).
* A test fails when anything logs an exception (a record with exc_info, or
  ERROR and above) while it runs, as Home Assistant's
  ``fail_on_log_exception`` does: a handler that swallowed a bug must not
  pass.  A test that provokes one on purpose says so with
  ``@pytest.mark.log_exceptions``.
* ``@pytest.mark.broker``: the test needs the ``mosquitto`` binary and a
  broker on 127.0.0.1:1883.  Without them it is skipped with the reason, but
  where ``OWM_REQUIRE_ALL`` is set (``./run-tests.sh``, so CI) it fails: it
  never skips silently there.
"""

import contextlib
import logging
import os
import shutil
import socket
import threading

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "broker: needs the mosquitto binary and a broker on :1883"
    )
    config.addinivalue_line(
        "markers", "log_exceptions: the test logs exceptions on purpose"
    )
    if _odoo_database(config):
        # Odoo is in test mode for the whole run: its test framework is
        # imported while collecting (see ``load_registry`` for the exception).
        from odoo.tools import config as odoo_config

        odoo_config["test_enable"] = True


def _odoo_database(config):
    try:
        return config.getoption("--odoo-database")
    except ValueError:  # pytest-odoo not installed
        return None


@pytest.fixture(scope="session", autouse=True)
def load_registry(request):
    """pytest-odoo's registry, loaded only when a database is given.

    Overrides pytest-odoo's fixture of the same name, which loads a registry
    for every run and so breaks a plain ``pytest`` of the pure tests."""
    dbname = _odoo_database(request.config)
    if not dbname:
        yield
        return
    import odoo
    from odoo.tools import config

    threading.current_thread().testing = True
    # Out of test mode while loading: in it, Odoo would run every installed
    # module's at-install tests as it loads them.
    config["test_enable"] = False
    try:
        odoo.modules.registry.Registry(dbname)
    finally:
        config["test_enable"] = True
    yield


@pytest.fixture(autouse=True)
def enable_odoo_test_flag():
    """pytest-odoo's fixture of that name toggles Odoo's test mode per module;
    here it stays on for the whole run (``pytest_configure``)."""
    yield


class _ExceptionRecorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_log_exception(request):
    recorder = _ExceptionRecorder()
    root = logging.getLogger()
    root.addHandler(recorder)
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)
    if request.node.get_closest_marker("log_exceptions"):
        return
    if recorder.records:
        first = recorder.records[0]
        pytest.fail(
            f"{len(recorder.records)} exception(s) logged during the test; the "
            f"first, by {first.name}: {first.getMessage()[:500]}",
            pytrace=False,
        )


def _broker_missing():
    if not shutil.which("mosquitto"):
        return "the mosquitto binary is not installed"
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 1883), 1):
        return None
    return "no MQTT broker on 127.0.0.1:1883"


def pytest_runtest_setup(item):
    if item.get_closest_marker("broker") is None:
        return
    missing = _broker_missing()
    if missing is None:
        return
    if os.environ.get("OWM_REQUIRE_ALL"):
        pytest.fail(f"needs a broker: {missing}", pytrace=False)
    pytest.skip(f"needs a broker: {missing}")
