"""Odoo for the tests: template databases, server processes, JSON-RPC."""

import contextlib
import itertools
import json
import os
import pathlib
import shutil
import signal
import subprocess
import urllib.request

import psycopg2
from harness_base import (
    ADDON,
    HOOK_EXAMPLE,
    addons_path,
    bridge_addons,
    free_port,
    odoo_command,
    port_open,
    wait_for,
)


def pg_connect(dbname="postgres"):
    cnx = psycopg2.connect(dbname=dbname)
    cnx.autocommit = True
    return cnx


# Where a server started without --data-dir (the template install) keeps files.
DEFAULT_DATA_DIR = pathlib.Path.home() / ".local" / "share" / "Odoo"


def drop_database(name):
    with contextlib.closing(pg_connect()) as cnx, cnx.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    shutil.rmtree(DEFAULT_DATA_DIR / "filestore" / name, ignore_errors=True)


def copy_filestore(template, name, data_dir):
    """The template's files (web assets, icons) for a clone served with
    ``data_dir``: without them the web client logs a traceback per file."""
    source = DEFAULT_DATA_DIR / "filestore" / template
    if source.is_dir():
        shutil.copytree(source, pathlib.Path(data_dir) / "filestore" / name)


def create_template(name, log_path, demo=False, modules=None):
    """A database with the addon installed, to clone for each test (fast).

    ``modules``: what to install (default: the addon, the session hook's
    example and the bridges)."""
    drop_database(name)
    cmd = [
        *odoo_command(),
        "-d",
        name,
        "-i",
        ",".join(modules or [ADDON, HOOK_EXAMPLE, *bridge_addons()]),
        f"--addons-path={addons_path()}",
        "--stop-after-init",
        "--max-cron-threads=0",
        f"--logfile={log_path}",
        "--log-level=warn",
    ]
    if not demo:
        cmd.append("--without-demo=all")
    subprocess.run(cmd, check=True, timeout=900)


def clone_database(template, name):
    drop_database(name)
    with contextlib.closing(pg_connect()) as cnx, cnx.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


class OdooServer:
    """An ``odoo`` server process with the addon loaded server-wide."""

    def __init__(
        self, dbname, workdir, workers=0, node=None, http_port=None, env=None, conf=None
    ):
        """``conf``: start on this odoo.conf alone (``-c``), which must use
        this server's ``http_port``, ``gevent_port``, ``log_path`` and
        ``workers``; else the harness's own command line."""
        self.dbname = dbname
        self.conf = conf
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workers = workers
        self.node = node or f"node-{free_port()}"
        self.http_port = http_port or free_port()
        self.gevent_port = free_port()
        self.extra_env = env or {}
        self.proc = None
        self.log_path = self.workdir / f"{self.node}.log"

    def start(self, timeout=90):
        env = dict(os.environ)
        env.update(
            {
                "ODOO_OWM_DATABASES": self.dbname,
                "ODOO_OWM_NODE": self.node,
                "ODOO_OWM_FLUSH_INTERVAL_MS": env.get(
                    "ODOO_OWM_FLUSH_INTERVAL_MS", "100"
                ),
            }
        )
        env.update(self.extra_env)
        cmd = [
            *odoo_command(),
            "-d",
            self.dbname,
            f"--db-filter=^{self.dbname}$",
            f"--addons-path={addons_path()}",
            f"--load=base,web,{ADDON}",
            f"--http-port={self.http_port}",
            f"--gevent-port={self.gevent_port}",
            "--http-interface=127.0.0.1",
            f"--workers={self.workers}",
            "--max-cron-threads=0",
            f"--logfile={self.log_path}",
            "--log-level=info",
            f"--data-dir={self.workdir / 'data'}",
            "--limit-time-real=600",
        ]
        if self.conf:
            cmd = [*odoo_command(), "-c", str(self.conf)]
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(self._http_ready, timeout, f"odoo {self.node} to serve HTTP")
        if self.workers:
            # The live board's websocket lives in the gevent process: a prefork
            # server without it serves pages that never update.
            wait_for(
                self._gevent_ready, 30, f"odoo {self.node}'s gevent (websocket) process"
            )
        return self

    def _gevent_ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"odoo exited with {self.proc.returncode}; see {self.log_path}"
            )
        return port_open(self.gevent_port)

    def _http_ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"odoo exited with {self.proc.returncode}; see {self.log_path}"
            )
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.http_port}/web/health", timeout=2
        ) as resp:
            return resp.status == 200

    def stop(self, timeout=30):
        """Stop as an operator does: SIGTERM to the server process only.

        A prefork master then stops its workers gracefully (SIGINT; a worker
        dies at once on SIGTERM, so the group must not get it). Whatever is
        left after ``timeout`` is killed."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def kill9(self):
        """SIGKILL the whole process group (master and workers), no cleanup at all."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def log_pids(self, text):
        """Pids of the processes that logged a line containing ``text``."""
        pids = []
        for line in self.log().splitlines():
            if text in line:
                pid = int(line.split()[2])
                if pid not in pids:
                    pids.append(pid)
        return pids

    def runner_pids(self):
        """Pids of the processes in which a runner consumed a broker connection."""
        return self.log_pids("MQTT runner started in")

    def log(self):
        return (
            self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        )

    def rpc(self, login="admin", password="admin"):
        return Rpc(self.http_port, self.dbname, login, password)


class Rpc:
    """JSON-RPC, exactly what any external client would use."""

    _ids = itertools.count(1)

    def __init__(self, port, dbname, login, password):
        self.url = f"http://127.0.0.1:{port}/jsonrpc"
        self.dbname = dbname
        self.password = password
        self.uid = self._call("common", "login", dbname, login, password)
        if not self.uid:
            raise RuntimeError(f"login {login!r} refused")

    def _call(self, service, method, *args):
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "call",
                "params": {"service": service, "method": method, "args": args},
                "id": next(self._ids),
            }
        ).encode()
        req = urllib.request.Request(
            self.url, body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            reply = json.loads(resp.read())
        if reply.get("error"):
            data = reply["error"].get("data", {})
            raise RpcError(data.get("message") or reply["error"].get("message"), data)
        return reply["result"]

    def __call__(self, model, method, *args, **kwargs):
        return self._call(
            "object",
            "execute_kw",
            self.dbname,
            self.uid,
            self.password,
            model,
            method,
            list(args),
            kwargs,
        )

    def search_read(self, model, domain, fields, **kw):
        return self(model, "search_read", domain, fields, **kw)


class RpcError(Exception):
    def __init__(self, message, data):
        super().__init__(message)
        self.data = data


def setup_workshop(rpc, broker_port, devices, **conn_vals):
    """One started connection to the test broker and the given devices.

    ``devices``: list of (name, topic_prefix, extra vals).  Returns (conn id, [ids]).
    """
    vals = {
        "name": "Test broker",
        "host": "127.0.0.1",
        "port": broker_port,
        "auto_start": False,
        "reconnect_min_s": 0.5,
        "reconnect_max_s": 2.0,
    }
    vals.update(conn_vals)
    conn_id = rpc("mqtt.connection", "create", vals)
    ids = []
    for name, prefix, extra in devices:
        dev_vals = {"name": name, "connection_id": conn_id, "topic_prefix": prefix}
        dev_vals.update(extra or {})
        ids.append(rpc("mqtt.device", "create", dev_vals))
    rpc("mqtt.connection", "action_start", [conn_id])
    return conn_id, ids


# -- meters -------------------------------------------------------------------
def connection_row(rpc, conn_id, fields=("state", "last_error", "owner_node")):
    return rpc.search_read("mqtt.connection", [("id", "=", conn_id)], list(fields))[0]


def wait_state(rpc, conn_id, state, timeout=30, what=None):
    """Wait until the connection form shows ``state``; return its row."""

    def check():
        row = connection_row(
            rpc, conn_id, ("state", "last_error", "owner_node", "runner_alive")
        )
        return row if row["state"] == state else None

    return wait_for(check, timeout, what or f"connection {conn_id} {state}")


def db_scalar(dbname, query, args=()):
    """One value straight from PostgreSQL (fast polling, no HTTP)."""
    with contextlib.closing(pg_connect(dbname)) as cnx, cnx.cursor() as cur:
        cur.execute(query, args)
        row = cur.fetchone()
        return row[0] if row else None


def terminate_backends(dbname, application_name):
    """``pg_terminate_backend`` every session of ``dbname`` with that
    application_name; return how many were terminated."""
    with contextlib.closing(pg_connect()) as cnx, cnx.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() "
            "AND application_name = %s",
            (dbname, application_name),
        )
        return cur.fetchone()[0]


def process_tree_rss_mb(pid):
    """Resident memory of a process and its children, in MiB."""
    import psutil

    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total / (1024 * 1024)
