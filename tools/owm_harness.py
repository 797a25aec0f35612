"""Real processes for end-to-end tests, fault scenarios and the benchmark.

A Mosquitto broker on a free port (persistence on, restartable), Odoo server
processes with the addon server-wide (threaded or prefork), a JSON-RPC client,
a Shelly Gen2/Gen3 frame publisher and bounded waits.  No Odoo import here:
everything talks to the real processes, as a user's browser or a meter would.
"""

import contextlib
import itertools
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import psycopg2

ROOT = pathlib.Path(__file__).resolve().parents[1]
ADDON = "open_workshop_mqtt"


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


def addons_path():
    """The Odoo addons plus a folder where this checkout is named open_workshop_mqtt."""
    if os.environ.get("OWM_ADDONS_PATH"):
        return os.environ["OWM_ADDONS_PATH"]
    link_dir = (
        pathlib.Path(tempfile.gettempdir()) / f"owm-addons-{os.getuid()}-{ROOT.name}"
    )
    link_dir.mkdir(exist_ok=True)
    link = link_dir / ADDON
    if not link.exists():
        link.symlink_to(ROOT)
    return f"{odoo_default_addons_path()},{link_dir}"


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
class Mosquitto:
    """A private broker: ``persistence`` keeps QoS 1 messages across restarts."""

    def __init__(self, workdir, port=None, persistence=True, extra_conf=""):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.persistence = persistence
        self.extra_conf = extra_conf
        self.proc = None

    @property
    def conf_path(self):
        return self.workdir / "mosquitto.conf"

    def _write_conf(self):
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_queued_messages 0",
            "max_inflight_messages 0",
            f"log_dest file {self.workdir}/mosquitto.log",
            self.extra_conf,
        ]
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self):
        self._write_conf()
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port), 10, f"mosquitto on port {self.port}")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Mosquitto saves its persistence file
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self, down_s=0.0):
        self.stop()
        time.sleep(down_s)
        self.start()


# -- Odoo ---------------------------------------------------------------------
def pg_connect(dbname="postgres"):
    cnx = psycopg2.connect(dbname=dbname)
    cnx.autocommit = True
    return cnx


def drop_database(name):
    with contextlib.closing(pg_connect()) as cnx, cnx.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_template(name, log_path, demo=False):
    """A database with the addon installed, to clone for each test (fast)."""
    drop_database(name)
    cmd = [
        odoo_python(),
        "-m",
        "odoo",
        "-d",
        name,
        "-i",
        ADDON,
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

    def __init__(self, dbname, workdir, workers=0, node=None, http_port=None, env=None):
        self.dbname = dbname
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
            odoo_python(),
            "-m",
            "odoo",
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
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(self._http_ready, timeout, f"odoo {self.node} to serve HTTP")
        return self

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
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
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
class ShellyPublisher:
    """Publishes Shelly PM Mini Gen3 frames as a fleet of meters would (QoS 1).

    A persistent MQTT session of its own, so frames sent while the broker is
    down are delivered after it comes back (as a real client library does).
    """

    def __init__(self, port, client_id=None, qos=1):
        import paho.mqtt.client as mqtt

        self.qos = qos
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"owm-test-pub-{free_port()}",
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)
        self.client.reconnect_delay_set(0.2, 1.0)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        wait_for(self.client.is_connected, 10, "publisher connected")
        self.sent = 0

    def notify_status(self, prefix, ts, power, energy=None, device_id=None, extra=None):
        comp = {"apower": power}
        if energy is not None:
            comp["aenergy"] = {"total": energy}
        if extra:
            comp.update(extra)
        frame = {
            "src": device_id or prefix,
            "dst": f"{prefix}/events",
            "method": "NotifyStatus",
            "params": {"ts": ts, "pm1:0": comp},
        }
        return self.raw(f"{prefix}/events/rpc", json.dumps(frame))

    def online(self, prefix, value=True):
        return self.raw(f"{prefix}/online", "true" if value else "false")

    def raw(self, topic, payload, qos=None):
        info = self.client.publish(topic, payload, qos=self.qos if qos is None else qos)
        self.sent += 1
        return info

    def flush(self, timeout=30):
        """Wait until the broker acknowledged every QoS 1 frame sent so far."""
        wait_for(
            lambda: not self.client._out_messages,  # pylint: disable=protected-access
            timeout,
            "publisher queue to drain",
            interval=0.05,
        )

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


class MeterStream:
    """A background thread playing on/off cycles for several meters.

    Each frame advances its meter's clock by ``step_s`` (device time), so the
    sessions it causes are known exactly: ``on_frames`` at ``on_w`` then
    ``off_frames`` at 0 W, repeated.  ``sent[prefix]`` lists the device times sent.
    """

    def __init__(
        self,
        publisher,
        prefixes,
        rate_hz=20.0,
        t0=None,
        step_s=1.0,
        on_frames=20,
        off_frames=20,
        on_w=500.0,
    ):
        import threading

        self.pub = publisher
        self.prefixes = list(prefixes)
        self.rate_hz = rate_hz
        self.t0 = t0 if t0 is not None else round(time.time()) - 3600.0
        self.step_s = step_s
        self.period = on_frames + off_frames
        self.on_frames = on_frames
        self.on_w = on_w
        self.sent = {p: [] for p in self.prefixes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.frame_no = 0

    def power(self, n):
        return self.on_w if n % self.period < self.on_frames else 0.0

    def _run(self):
        interval = 1.0 / self.rate_hz
        next_at = time.monotonic()
        while not self._stop.is_set():
            n = self.frame_no
            for prefix in self.prefixes:
                ts = self.t0 + n * self.step_s
                self.pub.notify_status(prefix, ts, self.power(n))
                self.sent[prefix].append(ts)
            self.frame_no += 1
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)

    def expected_sessions(self, detector_stop_debounce=15.0):
        """(start, end) of the sessions these frames close (power_drop)."""
        out = []
        n = self.frame_no
        for cycle_start in range(0, n, self.period):
            drop = cycle_start + self.on_frames
            # closed once a frame >= stop debounce after the drop was sent
            if drop + detector_stop_debounce / self.step_s < n:
                out.append(
                    (self.t0 + cycle_start * self.step_s, self.t0 + drop * self.step_s)
                )
        return out


# -- fault scenarios: restarts, faults, TLS -----------------------------------
# Mosquitto's default log types plus one line per SUBSCRIBE ("<time>: <client id>
# <qos> <filter>"), so a test can see that a runner resubscribed.
SUBSCRIBE_LOG = "\n".join(
    f"log_type {kind}"
    for kind in ("error", "warning", "notice", "information", "subscribe")
)


class FaultBroker(Mosquitto):
    """A Mosquitto for fault scenarios: its persistence file and log really
    get written, and it can log every packet for exact delivery accounting.

    Started as root, Mosquitto drops to the ``mosquitto`` user, which cannot
    write a private (0700) pytest directory: it then runs without its
    persistence file and log.  ``user root`` keeps it as the test's user.
    ``debug``: one log line per PUBLISH received and sent (see ``forwarded``).
    """

    def __init__(
        self, workdir, port=None, persistence=True, extra_conf="", debug=False
    ):
        lines = ["user root"] if os.geteuid() == 0 else []
        lines.append(SUBSCRIBE_LOG)
        if debug:
            lines.append("log_type debug")
        lines.append(extra_conf)
        super().__init__(workdir, port, persistence, "\n".join(lines))

    @property
    def log_path(self):
        return self.workdir / "mosquitto.log"

    def log(self):
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def subscribed(self, client_id, start=0):
        """Filters ``client_id`` subscribed to in the log after offset ``start``."""
        out = []
        for line in self.log()[start:].splitlines():
            parts = line.split(" ")
            if len(parts) == 4 and parts[1] == client_id and parts[2] in "012":
                out.append(parts[3])
        return out

    def forwarded(self, publisher_id, subscriber_id):
        """{publisher packet id: sent on to subscriber_id?} for every PUBLISH
        the broker received from ``publisher_id`` (needs ``debug``).  An
        online subscriber's copy is logged right after the PUBLISH it copies."""
        received = f"Received PUBLISH from {publisher_id} ("
        sending = f"Sending PUBLISH to {subscriber_id} ("
        result = {}
        current = None
        for line in self.log().splitlines():
            if "Received PUBLISH from " in line:
                current = None
                if received in line:
                    current = int(line.split(received, 1)[1].split(", ")[3][1:])
                    result.setdefault(current, False)
            elif current is not None and sending in line:
                result[current] = True
        return result


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


def raw_log(rpc, device_id, fields=("device_ts", "status", "detail")):
    return rpc.search_read(
        "mqtt.message", [("device_id", "=", device_id)], list(fields), order="id"
    )


def delivery_figures(sent, rows):
    """Frames sent (device times) against the device's raw log rows.

    recorded: rows with status ``reading``; lost: sent frames without one;
    doubled: reading rows beyond one per frame; redelivered: other rows (a
    copy the runner recognised and did not apply, e.g. ``duplicate`` or
    ``not_reading``/``stale``); unexpected: readings nobody sent."""
    from collections import Counter

    readings = Counter(r["device_ts"] for r in rows if r["status"] == "reading")
    sent_set = set(sent)
    return {
        "sent": len(sent),
        "recorded": sum(readings.values()),
        "lost": len(sent_set - set(readings)),
        "doubled": sum(n - 1 for n in readings.values() if n > 1),
        "redelivered": len(rows) - sum(readings.values()),
        "unexpected": len(set(readings) - sent_set),
    }


def wait_recorded(rpc, device_id, sent, timeout=60):
    """Wait until the raw log of ``device_id`` holds a reading row for every
    frame sent, then return the delivery figures."""
    expected = len(sent)
    domain = [("device_id", "=", device_id), ("status", "=", "reading")]
    wait_for(
        lambda: rpc("mqtt.message", "search_count", domain) >= expected,
        timeout,
        f"{expected} reading rows of device {device_id}",
        interval=0.5,
    )
    time.sleep(0.5)  # anything doubled would arrive right behind
    return delivery_figures(sent, raw_log(rpc, device_id))


def session_rows(rpc, device_id, fields=None):
    return rpc.search_read(
        "mqtt.session",
        [("device_id", "=", device_id)],
        list(
            fields
            or (
                "start_ts",
                "end_ts",
                "state",
                "standby_duration_s",
                "working_duration_s",
                "total_duration_s",
                "energy_wh",
                "end_reason",
            )
        ),
        order="start_ts",
    )


def wait_closed_sessions(rpc, device_id, count, timeout=30):
    """Wait until ``device_id`` has exactly ``count`` sessions, all closed."""

    def check():
        rows = session_rows(rpc, device_id)
        done = len(rows) == count and all(r["state"] == "closed" for r in rows)
        return rows if done else None

    return wait_for(check, timeout, f"{count} closed session(s) of {device_id}")


def figures(name, **values):
    """Print the figures of a scenario in one greppable line (pytest -s)."""
    print(f"\nFIGURES {name}: {json.dumps(values, sort_keys=True)}", flush=True)
    return values


def process_tree_rss_mb(pid):
    """Resident memory of a process and its children, in MiB."""
    import psutil

    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total / (1024 * 1024)


class PatternMeter:
    """One meter on a real-time clock: frame ``k`` says ``powers[k]`` watts at
    device time ``t0 + k * period_s`` and is published at real time
    ``started + k * period_s`` (a real meter's pace: a broker or Odoo outage
    really is that long on its clock).  ``sent`` lists the device times."""

    def __init__(self, publisher, prefix, powers, t0=None, period_s=1.0):
        import threading

        self.pub = publisher
        self.prefix = prefix
        self.powers = list(powers)
        self.t0 = t0 if t0 is not None else round(time.time()) - 600.0
        self.period_s = period_s
        self.sent = []
        self.mids = []  # the publisher's packet id of each frame
        self._thread = threading.Thread(target=self._run, daemon=True)

    def ts(self, k):
        return self.t0 + k * self.period_s

    def _run(self):
        started = time.monotonic()
        for k, watts in enumerate(self.powers):
            time.sleep(max(0.0, started + k * self.period_s - time.monotonic()))
            info = self.pub.notify_status(self.prefix, self.ts(k), watts)
            self.mids.append(info.mid)
            self.sent.append(self.ts(k))

    def start(self):
        self._thread.start()
        return self

    def wait_sent(self, count, timeout=None):
        """Block until ``count`` frames were published."""
        limit = timeout or (count * self.period_s + 10)
        wait_for(lambda: len(self.sent) >= count, limit, f"{count} frames sent", 0.05)

    def join(self, timeout=None):
        self._thread.join(timeout or (len(self.powers) * self.period_s + 10))
        assert not self._thread.is_alive(), "meter still publishing"


def make_tls_material(directory, host="127.0.0.1"):
    """A private CA, a server certificate for ``host`` (IP SAN) and a client
    certificate, as PEM files in ``directory``; returns {name: path}."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def name(common):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def cert(subject, public_key, issuer, signer, extensions):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
        )
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    ca_key = key()
    ca_name = name("OWM test CA")
    ca = cert(
        ca_name,
        ca_key.public_key(),
        ca_name,
        ca_key,
        [(x509.BasicConstraints(ca=True, path_length=None), True)],
    )
    try:
        san = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    server_key = key()
    server = cert(
        name(host),
        server_key.public_key(),
        ca_name,
        ca_key,
        [
            (x509.SubjectAlternativeName([san]), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
    client_key = key()
    client = cert(
        name("owm-runner"),
        client_key.public_key(),
        ca_name,
        ca_key,
        [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)],
    )
    paths = {}
    for label, obj in (("ca", ca), ("server", server), ("client", client)):
        paths[label] = directory / f"{label}.crt"
        paths[label].write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    for label, obj in (("server_key", server_key), ("client_key", client_key)):
        paths[label] = directory / f"{label.split('_')[0]}.key"
        paths[label].write_bytes(
            obj.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        paths[label].chmod(0o600)
    return paths


def tls_listener_conf(port, material, require_certificate=False):
    """Mosquitto configuration lines of a TLS listener on 127.0.0.1:``port``."""
    lines = [
        f"listener {port} 127.0.0.1",
        f"cafile {material['ca']}",
        f"certfile {material['server']}",
        f"keyfile {material['server_key']}",
    ]
    if require_certificate:
        lines.append("require_certificate true")
    return "\n".join(lines)


def stream_figures(rpc, stream, device_ids, timeout=60):
    """Delivery and session figures of a MeterStream's meters, summed.

    ``sessions_exact``: every device's power-drop sessions are exactly the
    ones the stream implies (the last cycle may also time out once the
    stream stopped: that one is not counted)."""
    total = dict.fromkeys(
        ("sent", "recorded", "lost", "doubled", "redelivered", "unexpected"), 0
    )
    expected = stream.expected_sessions()
    total.update(sessions_expected=0, sessions_recorded=0, sessions_exact=True)
    for prefix, dev_id in zip(stream.prefixes, device_ids, strict=True):
        got = wait_recorded(rpc, dev_id, stream.sent[prefix], timeout)
        for key in got:
            total[key] += got[key]
        domain = [
            ("device_id", "=", dev_id),
            ("state", "=", "closed"),
            ("end_reason", "=", "power_drop"),
        ]

        def closed(domain=domain):
            rows = rpc.search_read(
                "mqtt.session",
                domain,
                ["start_ts", "end_ts", "working_duration_s", "standby_duration_s"],
                order="start_ts",
            )
            return rows if len(rows) >= len(expected) else None

        rows = wait_for(closed, timeout, f"the sessions of {prefix}")
        total["sessions_expected"] += len(expected)
        total["sessions_recorded"] += len(rows)
        on_s = stream.on_frames * stream.step_s
        total["sessions_exact"] &= [(r["start_ts"], r["end_ts"]) for r in rows] == (
            expected
        ) and all(
            abs(r["working_duration_s"] - on_s) < 1e-6
            and abs(r["standby_duration_s"]) < 1e-6
            for r in rows
        )
    return total
