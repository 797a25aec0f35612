"""What one ingest benchmark run owns, and the paths its modules share.

Every process, database and folder a run starts is recorded in :class:`Owned`
and goes at the end, also after Ctrl-C or a broken section; databases of
runs that died without cleaning up are dropped at the next start.  The e2e
harness (tools/owm_harness.py, imported here as ``h``) starts the broker, the
Odoo servers and the databases.
"""

import contextlib
import os
import pathlib
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psutil
import psycopg2

BENCH = pathlib.Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tools"))

import owm_harness as h  # noqa: E402

RESULTS = BENCH / "results"
DB_PREFIX = "owm_bench_"


# -- processes and databases we own -------------------------------------------
class Owned:
    """Every process, database and folder this run started: all go at the end."""

    def __init__(self):
        self.tag = f"{DB_PREFIX}{os.getpid()}"
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="owm-bench-"))
        self.broker = None
        self.servers = []
        self.procs = []
        self.dbs = []
        self.threads = []

    def db(self, suffix):
        name = f"{self.tag}_{suffix}"
        self.dbs.append(name)
        return name

    def spawn(self, cmd, log_name, **kw):
        log = open(self.workdir / log_name, "ab")  # noqa: SIM115 (closed by the OS)
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
            cwd=str(BENCH),
            **kw,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def end_proc(self, proc, timeout=10.0):
        """SIGTERM, bounded wait, SIGKILL; returns its remaining stdout."""
        out = b""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=10)
        if proc in self.procs:
            self.procs.remove(proc)
        return out.decode(errors="replace") if out else ""

    def stop_server(self, server):
        with contextlib.suppress(Exception):
            server.stop(timeout=20)
        if server in self.servers:
            self.servers.remove(server)

    def cleanup(self, keep_logs=False):
        for thread in self.threads:
            with contextlib.suppress(Exception):
                thread.stop()
        for proc in list(self.procs):
            with contextlib.suppress(Exception):
                self.end_proc(proc, timeout=5)
        for server in list(self.servers):
            self.stop_server(server)
        if self.broker is not None:
            with contextlib.suppress(Exception):
                self.broker.stop()
            self.broker = None
        for name in self.dbs:
            with contextlib.suppress(Exception):
                h.drop_database(name)
        self.dbs = []
        if keep_logs:
            print(f"logs kept in {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def drop_stale_databases():
    """Databases of earlier runs that died without cleaning up (their pid is gone)."""
    with contextlib.closing(h.pg_connect()) as cnx, cnx.cursor() as cur:
        cur.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (DB_PREFIX.replace("_", r"\_") + "%",),
        )
        names = [r[0] for r in cur.fetchall()]
    for name in names:
        pid = name[len(DB_PREFIX) :].split("_", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            h.drop_database(name)


def wait_ready(proc, timeout, what):
    """Read ``proc``'s stdout until a line READY (bounded)."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                continue
            buf += chunk
            if b"READY" in buf:
                return
    raise RuntimeError(f"{what} not ready within {timeout:g} s")


def commit_probe(dbname, seconds=2.0):
    """Single-row INSERT + COMMIT per round trip for ``seconds``: what a
    commit per message can reach here at best (WAL flush, fsync)."""
    with contextlib.closing(psycopg2.connect(dbname=dbname)) as cnx:
        with cnx.cursor() as cur:
            cur.execute("CREATE TABLE owm_bench_commit_probe (id serial, v float8)")
            cnx.commit()
            n = 0
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                cur.execute("INSERT INTO owm_bench_commit_probe (v) VALUES (1)")
                cnx.commit()
                n += 1
            cur.execute("DROP TABLE owm_bench_commit_probe")
            cnx.commit()
    return round(n / seconds, 1)


def wipe_mqtt_session(port, client_id):
    """Drop the broker's persistent session of a stopped runner, so its QoS 1
    subscriptions do not queue the next section's frames."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client.connect("127.0.0.1", port, clean_start=True, properties=props)
    deadline = time.monotonic() + 5
    while not client.is_connected() and time.monotonic() < deadline:
        client.loop(timeout=0.05)
    client.disconnect()
