"""MqttRunner: finds the databases to serve and keeps one database runner per database.

How the runner lives inside Odoo (the shape of OCA queue_job's jobrunner):

* ``open_workshop_mqtt`` must be a server-wide module
  (``server_wide_modules = base,web,open_workshop_mqtt`` or
  ``--load=base,web,open_workshop_mqtt``).  Its ``post_load`` hook patches the
  server classes (hosting.py); nothing starts at import time.
* Threaded server: one daemon thread started after the server started.
* Prefork server (``--workers N``): the master spawns one dedicated worker
  process for the runner and respawns it if it dies; HTTP and cron workers
  never run it.  ``--stop-after-init`` (install, update, tests) never starts it.
* Several servers on one database may all run it: each broker connection is
  consumed by exactly one of them (advisory lock + fencing token, see
  database_runner.py); another takes over within seconds when it dies.

Configuration (environment first, then the ``[open_workshop_mqtt]`` section
of the Odoo configuration file):

* ``ODOO_OWM_DATABASES`` / ``databases``: comma-separated list; default: the
  ``db_name`` option, else every database with the addon installed.
* ``ODOO_OWM_FLUSH_INTERVAL_MS`` / ``flush_interval_ms`` (default 250).
* ``ODOO_OWM_MAX_BATCH`` / ``max_batch`` (default 2000).
* ``ODOO_OWM_NODE`` / ``node``: the name shown as owner (default host:pid).
* ``ODOO_OWM_ENABLED`` / ``enabled``: ``0`` keeps this server from running it.
* ``ODOO_OWM_HISTORY`` / ``history``: ``0`` keeps no power history (for a
  comparison; power curves and recomputing then miss what came meanwhile).
"""

import logging
import os
import threading

from odoo import sql_db
from odoo.service import db as db_service
from odoo.tools import config

from .database_runner import (
    FLUSH_INTERVAL_S,
    MAX_BATCH,
    DatabaseRunner,
    RunnerSettings,
)

_logger = logging.getLogger(__name__)

DB_SCAN_EVERY_S = 30.0
ADDON = "open_workshop_mqtt"


def _option(name, env_name, default=None):
    value = os.environ.get(env_name)
    if value is None:
        value = config.misc.get(ADDON, {}).get(name)
    return default if value in (None, "") else value


def _flag(name, env_name, default):
    value = str(_option(name, env_name, default)).lower()
    return value not in ("0", "false", "no", "off")


def runner_enabled():
    return _flag("enabled", "ODOO_OWM_ENABLED", "1")


class MqttRunner:
    """Server-agnostic: ``run()`` blocks until ``stop()``; the hosting calls them."""

    def __init__(self, databases=None, settings=None):
        self.databases = databases  # None: discover
        self.settings = settings or RunnerSettings()
        self.runners = {}
        self._stop = threading.Event()

    @classmethod
    def from_environ_or_config(cls):
        dbs = _option("databases", "ODOO_OWM_DATABASES") or config["db_name"] or ""
        databases = [d.strip() for d in str(dbs).split(",") if d.strip()] or None
        settings = RunnerSettings(
            flush_interval_s=float(
                _option(
                    "flush_interval_ms",
                    "ODOO_OWM_FLUSH_INTERVAL_MS",
                    FLUSH_INTERVAL_S * 1000.0,
                )
            )
            / 1000.0,
            max_batch=int(_option("max_batch", "ODOO_OWM_MAX_BATCH", MAX_BATCH)),
            node=_option("node", "ODOO_OWM_NODE"),
            history=_flag("history", "ODOO_OWM_HISTORY", "1"),
        )
        return cls(databases, settings)

    def run(self):
        _logger.info(
            "MQTT runner started in %s (node %s, databases: %s)",
            _process_kind(),
            self.settings.node,
            ", ".join(self.databases) if self.databases else "all with the addon",
        )
        while not self._stop.is_set():
            try:
                self._sync_runners()
            except Exception:
                _logger.exception("MQTT runner: scanning databases failed")
            self._stop.wait(DB_SCAN_EVERY_S)
        for runner in self.runners.values():
            runner.stop()
        _logger.info("MQTT runner %s stopped", self.settings.node)

    def stop(self):
        self._stop.set()

    def _sync_runners(self):
        wanted = set(self._databases())
        for dbname in list(self.runners):
            if dbname not in wanted:
                self.runners.pop(dbname).stop()
        for dbname in wanted:
            runner = self.runners.get(dbname)
            if runner is None or not runner.alive:
                runner = DatabaseRunner(dbname, self.settings)
                self.runners[dbname] = runner
                runner.start()

    def _databases(self):
        names = self.databases or db_service.list_dbs(True)
        return [name for name in names if _has_addon(name)]


def _process_kind():
    return f"{threading.current_thread().name} of process {os.getpid()}"


def _has_addon(dbname):
    try:
        cnx = sql_db.db_connect(dbname)
        with cnx.cursor() as cr:
            cr.execute(
                "SELECT 1 FROM ir_module_module "
                "WHERE name = %s AND state = 'installed'",
                (ADDON,),
            )
            return bool(cr.fetchone())
    except Exception:  # no such database, not an Odoo database, ...
        _logger.debug("Database %s not served", dbname, exc_info=True)
        return False
