"""End-to-end fixtures: a private Mosquitto, a template database with the addon,
and Odoo server processes with the addon server-wide.  Every wait is bounded
(tools/owm_harness.wait_for) and every test has a hard timeout, so nothing hangs.
"""

import os
import pathlib
import sys
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import owm_harness as h  # noqa: E402

TEMPLATE = f"owm_e2e_tpl_{os.getpid()}"


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.e2e)
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(300))


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("owm-e2e")


@pytest.fixture(scope="session")
def template_db(workdir):
    h.create_template(TEMPLATE, workdir / "template-install.log")
    yield TEMPLATE
    h.drop_database(TEMPLATE)


@pytest.fixture
def broker(workdir):
    """A private broker whose persistence file and log really get written."""
    b = h.FaultBroker(workdir / f"broker-{uuid.uuid4().hex[:6]}").start()
    yield b
    b.stop()


@pytest.fixture
def database(template_db):
    name = f"owm_e2e_{uuid.uuid4().hex[:10]}"
    h.clone_database(template_db, name)
    yield name
    if not os.environ.get("OWM_KEEP_DB"):  # keep it to look into a failure
        h.drop_database(name)


@pytest.fixture
def servers(database, workdir):
    """Factory: start Odoo servers on the test database; all stopped afterwards."""
    started = []

    def start(workers=0, node=None, **kw):
        server = h.OdooServer(
            database, workdir / database, workers=workers, node=node, **kw
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
    for server in started:
        log = server.log()
        assert "Traceback" not in log, (
            f"{server.node} logged an exception:\n{log[-4000:]}"
        )


@pytest.fixture
def publisher(broker):
    pub = h.ShellyPublisher(broker.port)
    yield pub
    pub.close()
