"""The sections of the ingest benchmark: what runs where, and in which order.

``threaded`` and ``prefork`` are real Odoo servers with the addon (the
workshop profile runs on the threaded one after its steps); ``naive`` and
``raw`` are the reference processes (ref_naive.py, ref_raw.py); ``--profile``
adds py-spy.  A broken section is reported and the others still run.
"""

import contextlib
import json
import os
import shutil
import subprocess
import time
import traceback

import loadgen
import pgwatch
import pyspy_summary
from ingest_owned import BENCH, RESULTS, commit_probe, h, wait_ready, wipe_mqtt_session
from ingest_report import print_header, print_step
from ingest_steps import OdooTarget, Stepper, Target


def _slope_per_h(series):
    """Least-squares slope of [[seconds, MB], ...] in MB per hour."""
    n = len(series)
    mx = sum(x for x, _ in series) / n
    my = sum(y for _, y in series) / n
    var = sum((x - mx) ** 2 for x, _ in series)
    if not var:
        return None
    cov = sum((x - mx) * (y - my) for x, y in series)
    return round(cov / var * 3600, 1)


def setup_odoo(rpc, port, prefixes):
    """One started connection and a meter per prefix (log_raw on, no polling,
    short debounces so sessions open and close during a step)."""
    conn_id = rpc(
        "mqtt.connection",
        "create",
        {
            "name": "Bench broker",
            "host": "127.0.0.1",
            "port": port,
            "auto_start": False,
            "reconnect_min_s": 0.5,
            "reconnect_max_s": 2.0,
        },
    )
    vals = [
        {
            "name": f"Bench machine {i}",
            "connection_id": conn_id,
            "topic_prefix": p,
            "log_raw": True,
            "poll_interval_s": 0,
            "max_msg_rate": 1000,  # the cap is not what this measures
            "start_debounce_s": 1.0,
            "stop_debounce_s": 2.0,
        }
        for i, p in enumerate(prefixes)
    ]
    dev_ids = rpc("mqtt.device", "create", vals)
    rpc("mqtt.connection", "action_start", [conn_id])
    h.wait_state(rpc, conn_id, "connected", timeout=30)
    return conn_id, dev_ids


def history_storage(dbname):
    """What the power history takes in the database: the chunk table (rows,
    TOAST and indexes) and the machines' tails, per reading recorded."""
    with contextlib.closing(h.pg_connect(dbname)) as cnx, cnx.cursor() as cur:
        cur.execute(
            "SELECT pg_total_relation_size('mqtt_power_chunk'),"
            " (SELECT coalesce(sum(length(history_tail)), 0) FROM mqtt_device),"
            " (SELECT coalesce(sum(count), 0) FROM mqtt_power_chunk),"
            " (SELECT count(*) FROM mqtt_power_chunk),"
            " (SELECT coalesce(sum(stat_readings), 0) FROM mqtt_connection)"
        )
        table, tails, records, chunks, readings = cur.fetchone()
    return {
        "chunk_table_bytes": table,
        "tail_bytes": tails,
        "chunks": chunks,
        "sealed_records": records,
        "readings": readings,
        "bytes_per_reading": round((table + tails) / readings, 2) if readings else None,
    }


class Bench(Stepper):
    """The whole run: every section on one broker, and their results."""

    def __init__(self, args, owned):
        super().__init__(args, owned)
        self.results = {"sections": {}}
        self.template = None

    # sections -------------------------------------------------------------------
    def ensure_template(self):
        if self.template is None:
            name = self.owned.db("tpl")
            started = time.monotonic()
            modules = [h.ADDON]
            if self.args.addons == "bridges":
                modules += h.bridge_addons()
            h.create_template(
                name, self.owned.workdir / "template.log", modules=modules
            )
            self.template = name
            self.results["pg_single_commit_per_s"] = commit_probe(name)
            print(
                f"template database with {', '.join(modules)}: "
                f"{time.monotonic() - started:.0f} s"
            )
        return self.template

    def odoo_pass(
        self, label, workers, rates, with_workshop, extra_env=None, workshop="workshop"
    ):
        dbname = self.owned.db(label)
        h.clone_database(self.ensure_template(), dbname)
        server = h.OdooServer(
            dbname,
            self.owned.workdir / label,
            workers=workers,
            node=f"bench-{label}",
            env={
                # Empty: the runner's default (the harness's own is 100 ms).
                "ODOO_OWM_FLUSH_INTERVAL_MS": str(self.args.flush_ms or ""),
                **dict(kv.split("=", 1) for kv in self.args.runner_env),
                **(extra_env or {}),
            },
        )
        self.owned.servers.append(server)
        server.start(timeout=120)
        rpc = server.rpc()
        tag = "t" if workers == 0 else "p"
        prefixes = [loadgen.prefix(tag, i) for i in range(self.args.devices)]
        conn_id, dev_ids = setup_odoo(rpc, self.owned.broker.port, prefixes)
        client_id = h.connection_row(rpc, conn_id, ("client_id",))["client_id"]
        pid = h.wait_for(server.runner_pids, 30, "the runner's pid")[-1]
        target = OdooTarget(f"odoo-{label}", dbname, pid, prefixes)
        section = {"workers": workers, "runner_pid_is_server": pid == server.proc.pid}
        self.results["sections"][label] = section
        try:
            target.watcher = self._watch(dbname, "mqtt_message")
            self.warmup(target, prefixes)
            print_header(f"Odoo runner, {label} server ({server.node}, pid {pid})")
            section["steps"] = self.steps(target, rates, self.args.step_seconds)
            if self.args.profile and section["steps"]:
                top = section["steps"][-1]["offered"]
                section["profile"] = self.profile(target, label, top)
            section["connection"] = h.connection_row(
                rpc,
                conn_id,
                (
                    "stat_received",
                    "stat_readings",
                    "stat_rejected",
                    "stat_rate_limited",
                    "stat_ignored",
                ),
            )
            if with_workshop:
                rpc("mqtt.device", "write", dev_ids, {"active": False})
                self.results[workshop] = self.workshop(rpc, conn_id, target)
            section["history"] = history_storage(dbname)
        finally:
            self._unwatch(target.watcher)
            self.owned.stop_server(server)
            section["server_log_tracebacks"] = server.log().count("Traceback")
            wipe_mqtt_session(self.owned.broker.port, client_id)
        return dbname

    def workshop(self, rpc, conn_id, target):
        args = self.args
        n = args.workshop_devices
        prefixes = [loadgen.prefix("w", i) for i in range(n)]
        vals = [
            {
                "name": f"Workshop machine {i}",
                "connection_id": conn_id,
                "topic_prefix": p,
                "log_raw": True,
                "poll_interval_s": 0,
            }
            for i, p in enumerate(prefixes)
        ]
        rpc("mqtt.device", "create", vals)
        # No traffic yet: what 1,000 configured meters cost the runner at rest
        # (after its reconcile, NOTIFY-driven, has loaded them).
        time.sleep(2.0)
        idle = self._idle_cpu(target.pid, 3.0 if args.quick else 10.0)
        # A workshop's pace: sessions of minutes, default debounces.
        target = OdooTarget("workshop", target.dbname, target.pid, prefixes)
        target.pattern = {"on_s": (30, 150), "off_s": (30, 300)}
        target.watcher = self._watch(target.dbname, "mqtt_message")
        try:
            self.warmup(target, prefixes, seed=8)
            print_header(
                f"Workshop: {n} meters at 1 reading/s for {args.workshop_seconds:g} s"
            )
            spy = None
            if args.profile:  # nonblocking: py-spy's CPU is its own, not the runner's
                spy = self.start_spy(target.pid, "workshop", args.workshop_seconds)
            res = self.step(
                target, float(n), args.workshop_seconds, 9, sample_every=5.0
            )
            if spy is not None:
                res["profile"] = self.finish_spy(spy)
        finally:
            self._unwatch(target.watcher)
        print_step("workshop", res)
        series = res.get("rss_series") or []
        if len(series) >= 2:
            res["rss_drift_mb"] = round(series[-1][1] - series[0][1], 1)
            res["rss_slope_mb_per_h"] = _slope_per_h(series)
        return res | idle

    def _idle_cpu(self, pid, seconds):
        c0 = pgwatch.cpu_seconds([pid])
        time.sleep(seconds)
        return {
            "idle_cpu_pct": round((pgwatch.cpu_seconds([pid]) - c0) / seconds * 100, 1)
        }

    def naive(self, dbname):
        prefixes = [loadgen.prefix("t", i) for i in range(self.args.devices)]
        spec = {
            "port": self.owned.broker.port,
            "dbname": dbname,
            "addons_path": h.addons_path(),
            "prefixes": prefixes,
            "client_id": f"owm-bench-naive-{os.getpid()}",
            "logfile": str(self.owned.workdir / "naive-odoo.log"),
        }
        cmd = [h.odoo_python(), str(BENCH / "ref_naive.py"), json.dumps(spec)]
        return self._reference("naive", cmd, dbname, "mqtt_message", prefixes)

    def raw(self, dbname):
        prefixes = [loadgen.prefix("r", i) for i in range(self.args.devices)]
        table = "bench_raw_message"
        spec = {
            "port": self.owned.broker.port,
            "dbname": dbname,
            "prefixes": prefixes,
            "client_id": f"owm-bench-raw-{os.getpid()}",
            "table": table,
        }
        cmd = [self.py, str(BENCH / "ref_raw.py"), json.dumps(spec)]
        return self._reference("raw", cmd, dbname, table, prefixes)

    def _reference(self, name, cmd, dbname, table, prefixes):
        proc = self.owned.spawn(cmd, f"ref-{name}.log")
        section = {}
        self.results["sections"][name] = section
        try:
            wait_ready(proc, 120, f"reference {name}")
            target = Target(f"ref-{name}", dbname, proc.pid, prefixes, table)
            target.watcher = self._watch(dbname, table)
            try:
                self.warmup(target, prefixes)
                print_header(f"Reference {name} (pid {proc.pid})")
                rates = self.args.raw_rates if name == "raw" else self.args.naive_rates
                section["steps"] = self.steps(target, rates, self.args.step_seconds)
            finally:
                self._unwatch(target.watcher)
        finally:
            out = self.owned.end_proc(proc, timeout=15)
            lines = [x for x in out.splitlines() if x.startswith("{")]
            if lines:
                section["process"] = json.loads(lines[-1])

    def profile(self, target, label, rate):
        """An extra step with py-spy on the runner (the measured steps stay
        unprofiled): where the runner's CPU time goes at this rate."""
        rate = self.args.profile_rate or rate
        spy = self.start_spy(target.pid, f"{label}-{rate:g}", self.args.profile_seconds)
        if spy is None:
            return None
        res = self.step(target, rate, self.args.profile_seconds + 2, seed=4242)
        print_step(f"{target.name} (py-spy)", res)
        return {"step": res, **self.finish_spy(spy)}

    def start_spy(self, pid, name, seconds):
        exe = shutil.which("py-spy")
        if not exe:
            print("  py-spy not installed (pip install py-spy): no profile")
            return None
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"profile-{name}.txt"
        with contextlib.suppress(FileNotFoundError):
            out.unlink()
        cmd = [
            exe, "record", "--pid", str(pid), "--duration", str(int(seconds)),
            "--rate", "100", "--format", "raw", "--output", str(out),
            "--nonblocking",
        ]  # fmt: skip
        if self.args.profile_idle:
            cmd.append("--idle")
        if self.args.profile_gil:
            cmd.append("--gil")
        proc = self.owned.spawn(cmd, "py-spy.log", stdin=subprocess.DEVNULL)
        return proc, out, seconds

    def finish_spy(self, spy):
        proc, out, seconds = spy
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(seconds + 30)
        self.owned.end_proc(proc, 5)
        if not out.exists():
            print(f"  py-spy wrote nothing: see {self.owned.workdir / 'py-spy.log'}")
            return {}
        summary = pyspy_summary.summarize(out, top=30)
        print(pyspy_summary.render(summary))
        threads = {}
        for name, entry in (
            ("bridge", "DatabaseRunner.run"),
            ("network", "MqttClient._run"),
        ):
            threads[name] = pyspy_summary.summarize(out, top=15, only=entry)
            print(pyspy_summary.render(threads[name], f"{name} thread samples"))
        return {"file": str(out), "summary": summary, "threads": threads}

    # the whole run ----------------------------------------------------------------
    def run(self):
        args = self.args
        sections = args.sections
        self.owned.broker = h.Mosquitto(self.owned.workdir / "broker").start()
        dbs = {}
        if "threaded" in sections or "workshop" in sections:
            rates = args.rates if "threaded" in sections else []
            dbs["threaded"] = self._section(
                "threaded", self.odoo_pass, "threaded", 0, rates, "workshop" in sections
            )
        if "history" in sections:  # the same again without the power history
            dbs["threaded_nohist"] = self._section(
                "threaded_nohist",
                self.odoo_pass,
                "threaded_nohist",
                0,
                args.rates if "threaded" in sections else [],
                "workshop" in sections,
                {"ODOO_OWM_HISTORY": "0"},
                "workshop_nohist",
            )
        if "naive" in sections:
            db = dbs.get("threaded") or self._plain_odoo_db("naive")
            self._section("naive", self.naive, db)
        if "prefork" in sections:
            dbs["prefork"] = self._section(
                "prefork", self.odoo_pass, "prefork", 2, args.rates, False
            )
        if "raw" in sections:
            self._section("raw", self.raw, dbs.get("prefork") or self._plain_db("raw"))
        return self.results

    def _section(self, name, func, *fargs):
        """Run one section; a broken one is reported, the others still run."""
        started = time.monotonic()
        try:
            return func(*fargs)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            traceback.print_exc()
            self.results["sections"].setdefault(name, {})["error"] = repr(exc)
            return None
        finally:
            took = time.monotonic() - started
            self.results["sections"].setdefault(name, {})["elapsed_s"] = round(took, 1)
            print(f"  ({name}: {took:.0f} s)", flush=True)

    def _plain_db(self, label):
        name = self.owned.db(label)
        with contextlib.closing(h.pg_connect()) as cnx, cnx.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        return name

    def _plain_odoo_db(self, label):
        """The naive reference alone: a clone (no devices: device_id stays empty)."""
        dbname = self.owned.db(label)
        h.clone_database(self.ensure_template(), dbname)
        return dbname
