#!/usr/bin/env python3
"""Ingest benchmark: Shelly frames -> Mosquitto -> the runner inside Odoo -> PostgreSQL.

One command, side by side in one run, same broker, same PostgreSQL:

* the Odoo runner in a real Odoo 18 server with the addon server-wide,
  threaded, then prefork (``--workers 2``), rate steps (default 1000, 2000,
  5000, 8000 /s for 20 s each);
* reference "raw": bare paho + queue + batched execute_values (no Odoo), the
  physical limit of this machine (steps up to 12,000 /s);
* reference "naive": one fresh Odoo cursor, one ORM create and one commit per
  message (the seed design);
* the workshop profile: 1,000 meters at 1 reading/s each (own phases) for
  ``--workshop-seconds``: runner CPU, RSS drift, p99, loss.

Everything is measured from PostgreSQL (every device has ``log_raw`` on, so
each committed reading is one ``mqtt_message`` row) and /proc (psutil).
Last stdout line: one JSON object, also written to bench/results/latest.json.

    python3 bench/ingest.py --quick          # < 3 min: 2000/s for 15 s, workshop 60 s
    python3 bench/ingest.py                  # full run (~20 min)
    python3 bench/ingest.py --profile        # + py-spy of the runner at the top rate

See bench/README.md for what each figure means.
"""

import argparse
import contextlib
import json
import math
import os
import pathlib
import platform
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import psutil
import psycopg2

BENCH = pathlib.Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(BENCH))

import loadgen  # noqa: E402
import owm_harness as h  # noqa: E402
import pgwatch  # noqa: E402
import pyspy_summary  # noqa: E402

RESULTS = BENCH / "results"
DB_PREFIX = "owm_bench_"
PUBLISHER_MAX_RATE = 7000  # one paho process per this many frames/s
P99_BAR_MS = 500.0
KEPT_UP = 0.95  # committed during the load / offered: no growing backlog
WARMUP_RATE = 200.0
START_DELAY_S = 0.5  # publishers connect, then start together


def _parse_rates(text):
    return [float(x) for x in str(text).split(",") if x.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="one step, short workshop")
    p.add_argument("--rates", help="Odoo steps (/s), default 1000,2000,5000,8000")
    p.add_argument("--raw-rates", help="raw reference steps, default rates+12000")
    p.add_argument("--naive-rates", help="naive steps, default 500,1000,1500,2000,3000")
    p.add_argument("--step-seconds", type=float, help="per step, default 20")
    p.add_argument("--devices", type=int, default=200, help="meters in the steps")
    p.add_argument("--workshop-devices", type=int, default=1000)
    p.add_argument("--workshop-seconds", type=float, help="default 600 (quick 60)")
    p.add_argument("--drain-seconds", type=float, help="bounded wait after a step")
    p.add_argument("--publishers", type=int, help="publisher processes (auto)")
    p.add_argument("--flush-ms", type=int, default=200, help="runner flush interval")
    p.add_argument(
        "--runner-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment of the Odoo servers, e.g. ODOO_OWM_MAX_BATCH=5000",
    )
    p.add_argument(
        "--sections",
        default="threaded,workshop,naive,prefork,raw",
        help="any of threaded,workshop,naive,prefork,raw",
    )
    p.add_argument(
        "--all-steps", action="store_true", help="go on after a step that lost"
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy record the Odoo runner in an extra step at the top rate",
    )
    p.add_argument("--profile-seconds", type=float, default=15.0)
    p.add_argument(
        "--profile-idle",
        action="store_true",
        help="py-spy --idle: wall time (waits on PostgreSQL, the GIL, the queue)",
    )
    p.add_argument("--profile-rate", type=float, help="default: the last step's rate")
    p.add_argument("--keep-logs", action="store_true", help="keep the work folder")
    p.add_argument("--json-out", default=str(RESULTS / "latest.json"))
    args = p.parse_args(argv)
    quick = args.quick
    args.rates = _parse_rates(
        args.rates or ("2000" if quick else "1000,2000,5000,8000")
    )
    if args.raw_rates:
        args.raw_rates = _parse_rates(args.raw_rates)
    elif quick:
        args.raw_rates = list(args.rates)
    else:
        args.raw_rates = sorted(set(args.rates) | {12000.0})
    args.naive_rates = _parse_rates(
        args.naive_rates
        or (",".join(map(str, args.rates)) if quick else "500,1000,1500,2000,3000")
    )
    args.step_seconds = args.step_seconds or (15.0 if quick else 20.0)
    args.workshop_seconds = args.workshop_seconds or (60.0 if quick else 600.0)
    args.drain_seconds = args.drain_seconds or (8.0 if quick else 15.0)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    return args


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


# -- the benchmark -----------------------------------------------------------------
class Bench:
    def __init__(self, args, owned):
        self.args = args
        self.owned = owned
        self.py = sys.executable
        self.results = {"sections": {}}
        self.template = None

    # publishers --------------------------------------------------------------
    def start_publishers(self, prefixes, rate, seconds, seed, **pattern):
        """Start the publisher process(es); they begin together at ``start_at``."""
        n = self.args.publishers or max(1, math.ceil(rate / PUBLISHER_MAX_RATE))
        n = max(1, min(n, len(prefixes)))
        start_at = time.time() + START_DELAY_S
        procs = []
        for k in range(n):
            group = prefixes[k::n]
            spec = {
                "port": self.owned.broker.port,
                "prefixes": group,
                "rate": rate * len(group) / len(prefixes),
                "duration": seconds,
                "seed": seed * 100 + k,
                "start_at": start_at,
                "client_id": f"owm-bench-pub-{os.getpid()}-{seed}-{k}",
                **pattern,
            }
            cmd = [self.py, str(BENCH / "loadgen.py"), json.dumps(spec)]
            procs.append(self.owned.spawn(cmd, "publisher.log"))
        return {"procs": procs, "start_at": start_at, "seconds": seconds}

    def finish_publishers(self, handle):
        """Wait for the publishers (bounded); return their merged figures."""
        outs = []
        for proc in handle["procs"]:
            try:
                out, _ = proc.communicate(timeout=handle["seconds"] + 90)
            except subprocess.TimeoutExpired:
                self.owned.end_proc(proc)
                raise RuntimeError("publisher did not finish in time") from None
            self.owned.procs.remove(proc)
            lines = out.decode().strip().splitlines()
            if proc.returncode or not lines:
                raise RuntimeError(
                    f"publisher failed ({proc.returncode}); "
                    f"see {self.owned.workdir / 'publisher.log'}"
                )
            outs.append(json.loads(lines[-1]))
        return {
            "published": sum(o["published"] for o in outs),
            "sent": sum(o["sent"] for o in outs),
            "t_first": min(o["t_first"] for o in outs),
            "t_last": max(o["t_last"] for o in outs),
            "max_lag_ms": max(o["max_lag_ms"] for o in outs),
            "cpu_s": sum(o["cpu_s"] for o in outs),
            "processes": len(outs),
        }

    def publish(self, prefixes, rate, seconds, seed, **pattern):
        handle = self.start_publishers(prefixes, rate, seconds, seed, **pattern)
        return self.finish_publishers(handle)

    def warmup(self, target, prefixes, seed=7):
        """Each meter about one frame; wait until all are committed
        (subscriptions in place, caches warm). Raises when they do not arrive."""
        mark = target.watcher.mark()
        rate = max(WARMUP_RATE, float(len(prefixes)))
        pub = self.publish(prefixes, rate, 1.0, seed, **target.pattern)
        lo, hi = pub["t_first"] - 0.5, pub["t_last"] + 0.5
        h.wait_for(
            lambda: target.watcher.seen_between(mark, lo, hi) >= pub["sent"],
            60,
            f"{pub['sent']} warm-up frames committed ({target.name})",
            interval=0.2,
        )
        time.sleep(0.5)

    # one rate step -------------------------------------------------------------
    def step(self, target, rate, seconds, seed, sample_every=0.5):
        watcher = target.watcher
        mark = watcher.mark()
        handle = self.start_publishers(
            target.prefixes, rate, seconds, seed, **target.pattern
        )
        pg_pids = pgwatch.backend_pids(target.dbname)
        broker_pid = self.owned.broker.proc.pid
        time.sleep(max(0.0, handle["start_at"] - time.time() - 0.05))
        sampler = pgwatch.ProcSampler(target.pid, sample_every)
        sampler.start()
        self.owned.threads.append(sampler)
        cpu0 = pgwatch.cpu_seconds([target.pid])
        pg0 = pgwatch.cpu_seconds(pg_pids)
        br0 = pgwatch.cpu_seconds([broker_pid])
        mach0 = psutil.cpu_times()
        t0 = time.time()
        pub = self.finish_publishers(handle)
        lo, hi = pub["t_first"] - 0.5, pub["t_last"] + 0.5
        drain_cut = self._drain(watcher, mark, lo, hi, pub)
        time.sleep(0.2)  # doubles would land right behind
        t1 = time.time()
        cpu1 = pgwatch.cpu_seconds([target.pid])
        pg1 = pgwatch.cpu_seconds(pg_pids)
        br1 = pgwatch.cpu_seconds([broker_pid])
        mach1 = psutil.cpu_times()
        sampler.stop()
        self.owned.threads.remove(sampler)
        rows, distinct = target.count(watcher.floor_id, lo, hi)
        lat, seen, sent = watcher.window(mark, lo, hi)
        bucket = 5.0 if sample_every >= 5.0 else 1.0
        timeline = pgwatch.worst_by_bucket(lat, sent, pub["t_first"], bucket)
        lat.sort()
        seen.sort()
        window = max(1e-6, pub["t_last"] - pub["t_first"])
        busy = (t1 - t0) or 1e-6
        mach_busy = sum(mach1) - sum(mach0) - (mach1.idle - mach0.idle)
        inside = sampler.between(pub["t_first"] - 1.0, pub["t_last"] + 1.0)
        rss = [s[2] for s in sampler.samples]
        res = {
            "offered": rate,
            "seconds": seconds,
            "published": pub["published"],
            "sent": pub["sent"],
            "recorded": rows,
            "lost": max(0, pub["sent"] - distinct),
            "doubled": rows - distinct,
            "sustained_per_s": round(min(distinct, pub["sent"]) / window, 1),
            "commit_per_s_in_window": round(
                pgwatch.count_in(seen, pub["t_first"], pub["t_last"]) / window, 1
            ),
            "p50_ms": _ms(pgwatch.percentile(lat, 0.50)),
            "p99_ms": _ms(pgwatch.percentile(lat, 0.99)),
            "max_ms": _ms(lat[-1] if lat else None),
            # CPU of the process under test over send window + drain (its work
            # for this step), and over the send window alone (from samples).
            "cpu_pct": round(max(0.0, cpu1 - cpu0) / busy * 100, 1),
            "cpu_pct_window": _rate_pct(inside),
            "rss_mb_peak": round(max(rss), 1) if rss else None,
            "pg_cpu_pct": round(max(0.0, pg1 - pg0) / busy * 100, 1),
            "broker_cpu_pct": round(max(0.0, br1 - br0) / busy * 100, 1),
            "publisher_cpu_pct": round(pub["cpu_s"] / busy * 100, 1),
            "machine_busy_pct": round(mach_busy / busy * 100, 1),
            "publisher_max_lag_ms": pub["max_lag_ms"],
            "publishers": pub["processes"],
            "drain_s": round(t1 - pub["t_last"], 2),
            "drain_cut": drain_cut,
            "kept_up": pgwatch.count_in(seen, pub["t_first"], pub["t_last"])
            >= KEPT_UP * min(pub["sent"], rate * window),
            "watch_max_gap_ms": round(watcher.max_gap * 1000, 1),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
        res[f"max_ms_per_{bucket:g}s"] = timeline
        if sample_every >= 5.0:
            res["rss_series"] = [
                [round(t - pub["t_first"], 1), round(r, 1)] for t, _c, r in inside
            ]
        return res

    def _drain(self, watcher, mark, lo, hi, pub):
        """Wait (bounded) until every acknowledged frame is committed.  With
        --quick, stop early once the backlog cannot drain within the bound at
        the current commit rate (returns True then)."""
        started = time.monotonic()
        deadline = started + self.args.drain_seconds
        first = None
        while time.monotonic() < deadline:
            seen = watcher.seen_between(mark, lo, hi)
            if seen >= pub["sent"]:
                return False
            now = time.monotonic()
            if first is None:
                first = (now, seen)
            elif self.args.quick and now - first[0] >= 2.0:
                rate = (seen - first[1]) / (now - first[0])
                if rate <= 0 or (pub["sent"] - seen) / rate > 2 * (deadline - now):
                    return True
            time.sleep(0.1)
        return False

    def steps(self, target, rates, seconds):
        out = self._steps(target, rates, seconds)
        best = best_lossless(out)
        if best is None:
            print(f"  {target.name}: no lossless step")
        else:
            ok = best["p99_ms"] is not None and best["p99_ms"] <= P99_BAR_MS
            print(
                f"  {target.name}: highest lossless {best['offered']:g}/s "
                f"(sustained {best['sustained_per_s']:g}/s), p99 {best['p99_ms']} ms "
                f"{'<=' if ok else '>'} {P99_BAR_MS:g} ms"
            )
        return out

    def _steps(self, target, rates, seconds):
        out = []
        for i, rate in enumerate(rates):
            res = self.step(target, rate, seconds, seed=1000 + i)
            out.append(res)
            print_step(target.name, res)
            if res["lost"] and not self.args.all_steps:
                print(
                    f"  {target.name}: lost frames at {rate:g}/s, higher steps skipped"
                )
                break
            time.sleep(1.0)
        return out

    # sections -------------------------------------------------------------------
    def ensure_template(self):
        if self.template is None:
            name = self.owned.db("tpl")
            started = time.monotonic()
            h.create_template(name, self.owned.workdir / "template.log")
            self.template = name
            self.results["pg_single_commit_per_s"] = commit_probe(name)
            print(
                f"template database with the addon: {time.monotonic() - started:.0f} s"
            )
        return self.template

    def odoo_pass(self, label, workers, rates, with_workshop):
        dbname = self.owned.db(label)
        h.clone_database(self.ensure_template(), dbname)
        server = h.OdooServer(
            dbname,
            self.owned.workdir / label,
            workers=workers,
            node=f"bench-{label}",
            env={
                "ODOO_OWM_FLUSH_INTERVAL_MS": str(self.args.flush_ms),
                **dict(kv.split("=", 1) for kv in self.args.runner_env),
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
                self.results["workshop"] = self.workshop(rpc, conn_id, target)
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
            ("bridge", "IotBridgeService.run"),
            ("network", "MqttClient._run"),
        ):
            threads[name] = pyspy_summary.summarize(out, top=15, only=entry)
            print(pyspy_summary.render(threads[name], f"{name} thread samples"))
        return {"file": str(out), "summary": summary, "threads": threads}

    def _watch(self, dbname, table):
        watcher = pgwatch.CommitWatcher(dbname, table)
        watcher.start()
        self.owned.threads.append(watcher)
        return watcher

    def _unwatch(self, watcher):
        if watcher is not None:
            watcher.stop()
            if watcher in self.owned.threads:
                self.owned.threads.remove(watcher)
            if watcher.error:
                raise RuntimeError(f"commit watcher failed: {watcher.error}")

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


class Target:
    """What a step drives and measures: a process, a database table, meters."""

    def __init__(self, name, dbname, pid, prefixes, table):
        self.name = name
        self.dbname = dbname
        self.pid = pid
        self.prefixes = prefixes
        self.table = table
        self.watcher = None
        self.pattern = {"on_s": (3, 5), "off_s": (3, 5)}

    def count(self, floor_id, lo, hi):
        """(rows, distinct (meter topic, device_ts)) sent in [lo, hi], exact."""
        with contextlib.closing(psycopg2.connect(dbname=self.dbname)) as cnx:
            with cnx.cursor() as cur:
                cur.execute(
                    f"SELECT count(*), count(DISTINCT (topic, device_ts)) "
                    f"FROM {self.table} WHERE id > %s AND device_ts BETWEEN %s AND %s",
                    (floor_id, lo, hi),
                )
                return cur.fetchone()


class OdooTarget(Target):
    def __init__(self, name, dbname, pid, prefixes):
        super().__init__(name, dbname, pid, prefixes, "mqtt_message")


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


# -- output -----------------------------------------------------------------------
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


def _rate_pct(samples):
    """CPU % of one core between the first and last (wall, cpu_s, rss) sample."""
    if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
        return None
    return round(
        (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0]) * 100, 1
    )


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000, 1)


COLUMNS = [
    ("offered", "offer/s", "{:>8.0f}"),
    ("sent", "sent", "{:>8d}"),
    ("recorded", "rows", "{:>8d}"),
    ("lost", "lost", "{:>7d}"),
    ("doubled", "dbl", "{:>4d}"),
    ("sustained_per_s", "sust/s", "{:>8.0f}"),
    ("commit_per_s_in_window", "cmt/s", "{:>7.0f}"),
    ("p50_ms", "p50ms", "{:>7.0f}"),
    ("p99_ms", "p99ms", "{:>7.0f}"),
    ("max_ms", "maxms", "{:>7.0f}"),
    ("cpu_pct", "cpu%", "{:>6.0f}"),
    ("rss_mb_peak", "rssMB", "{:>6.0f}"),
    ("pg_cpu_pct", "pg%", "{:>5.0f}"),
    ("broker_cpu_pct", "mq%", "{:>5.0f}"),
    ("publisher_cpu_pct", "pub%", "{:>5.0f}"),
    ("machine_busy_pct", "all%", "{:>5.0f}"),
    ("publisher_max_lag_ms", "lagms", "{:>6.0f}"),
]


def print_header(title):
    print(f"\n== {title}")
    head = "".join(
        f"{label:>{len(fmt.format(0) if 'd' in fmt else fmt.format(0.0))}}"
        for _key, label, fmt in COLUMNS
    )
    print(f"{'':<18}{head}", flush=True)


def print_step(name, res):
    cells = []
    for key, _label, fmt in COLUMNS:
        value = res.get(key)
        width = len(fmt.format(0) if "d" in fmt else fmt.format(0.0))
        cells.append("-".rjust(width) if value is None else fmt.format(value))
    flag = "" if res.get("kept_up", True) else "  backlog"
    print(f"{name[:18]:<18}" + "".join(cells) + flag, flush=True)


def best_lossless(steps, strict=None):
    """The highest step with zero loss and no doubles (or None).

    ``strict="kept_up"``: it also committed >= 95 % of the offered rate while
    the load ran (no backlog that only the drain wait cleared);
    ``strict="p99"``: its p99 is also within the bar."""
    ok = [s for s in steps or [] if not s["lost"] and not s["doubled"]]
    if strict == "kept_up":
        ok = [s for s in ok if s["kept_up"]]
    elif strict == "p99":
        ok = [s for s in ok if s["p99_ms"] is not None and s["p99_ms"] <= P99_BAR_MS]
    return max(ok, key=lambda s: s["offered"]) if ok else None


def _offered(step):
    return step["offered"] if step else 0


def machine_info():
    info = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    with contextlib.suppress(Exception):
        with contextlib.closing(h.pg_connect()) as cnx, cnx.cursor() as cur:
            cur.execute("SHOW server_version")
            info["postgresql"] = cur.fetchone()[0]
    with contextlib.suppress(Exception):
        out = subprocess.run(
            ["mosquitto", "-h"], capture_output=True, text=True, timeout=5
        ).stdout
        info["mosquitto"] = out.splitlines()[0].replace("mosquitto version ", "")
    with contextlib.suppress(Exception):
        import paho.mqtt

        info["paho_mqtt"] = paho.mqtt.__version__
    with contextlib.suppress(Exception):
        info["odoo"] = subprocess.run(
            [h.odoo_python(), "-c", "import odoo; print(odoo.release.version)"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tempfile.gettempdir(),
        ).stdout.strip()
    with contextlib.suppress(Exception):
        info["git"] = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    return info


def summary(results, args, info, elapsed):
    secs = results["sections"]
    out = {}
    thr = secs.get("threaded", {}).get("steps")
    best = best_lossless(thr)
    ref = best or (thr[0] if thr else None)
    out["readings_per_s"] = best["sustained_per_s"] if best else 0
    out["offered_per_s"] = best["offered"] if best else 0
    out["lost"] = ref["lost"] if ref else None
    out["doubled"] = ref["doubled"] if ref else None
    out["p50_ms"] = ref["p50_ms"] if ref else None
    out["p99_ms"] = ref["p99_ms"] if ref else None
    out["max_ms"] = ref["max_ms"] if ref else None
    out["p99_ok"] = bool(
        best and best["p99_ms"] is not None and best["p99_ms"] <= P99_BAR_MS
    )
    out["top_step_lossless"] = bool(best and thr and best is thr[-1])
    for name, key in (
        ("prefork", "prefork_readings_per_s"),
        ("raw", "raw_limit_readings_per_s"),
        ("naive", "naive_readings_per_s"),
    ):
        b = best_lossless(secs.get(name, {}).get("steps"))
        out[key] = b["sustained_per_s"] if b else 0
        out[key.replace("readings_per_s", "p99_ms")] = b["p99_ms"] if b else None
    # Stricter readings of the same steps: lossless AND kept up during the
    # load (no backlog), lossless AND p99 within the bar.
    for strict in ("kept_up", "p99"):
        out[f"{strict}_readings_per_s"] = {
            name: _offered(best_lossless(sec.get("steps"), strict))
            for name, sec in secs.items()
            if "steps" in sec
        }
    ws = results.get("workshop") or {}
    rss = [r for _t, r in ws.get("rss_series") or []]
    out["workshop_cpu_pct"] = ws.get("cpu_pct_window", ws.get("cpu_pct"))
    out["workshop_rss_mb_start"] = rss[0] if rss else None
    out["workshop_rss_mb_end"] = rss[-1] if rss else None
    out["workshop_p99_ms"] = ws.get("p99_ms")
    out["workshop_lost"] = ws.get("lost")
    # A saturated design's commit rate while the load ran: its capacity
    # estimate even when no step was lossless (e.g. the naive one in --quick).
    out["max_commit_per_s"] = {
        name: max(
            (s["commit_per_s_in_window"] for s in sec.get("steps", [])), default=None
        )
        for name, sec in secs.items()
    }
    out["cpu_pct_per_step"] = {
        name: {f"{s['offered']:g}": s["cpu_pct"] for s in sec.get("steps", [])}
        for name, sec in secs.items()
    }
    out["bars"] = {
        "5000_per_s_lossless_p99_500ms": bool(
            best and best["offered"] >= 5000 and out["p99_ok"]
        ),
        "workshop_cpu_under_25pct": bool(
            ws.get("cpu_pct") is not None and ws["cpu_pct"] < 25
        ),
    }
    out["config"] = {
        "quick": args.quick,
        "rates": args.rates,
        "raw_rates": args.raw_rates,
        "naive_rates": args.naive_rates,
        "step_seconds": args.step_seconds,
        "devices": args.devices,
        "workshop_devices": args.workshop_devices,
        "workshop_seconds": args.workshop_seconds,
        "drain_seconds": args.drain_seconds,
        "flush_ms": args.flush_ms,
        "runner_env": args.runner_env,
    }
    out["pg_single_commit_per_s"] = results.get("pg_single_commit_per_s")
    out["machine"] = info
    out["elapsed_s"] = round(elapsed, 1)
    out["details"] = results
    return out


def print_summary(out):
    print("\n== Summary")
    if out["offered_per_s"]:
        print(
            f"Odoo runner threaded : {out['readings_per_s']:>7.0f} readings/s "
            f"lossless (offered {out['offered_per_s']:g}/s), p99 {out['p99_ms']} ms "
            f"({'<=' if out['p99_ok'] else '>'} {P99_BAR_MS:g} ms)"
        )
    else:
        print("Odoo runner threaded :       0 readings/s (no lossless step)")
    print(f"Odoo runner prefork  : {out['prefork_readings_per_s']:>7.0f} readings/s")
    print(
        "lossless and kept up during the load (/s): "
        + ", ".join(f"{k} {v:g}" for k, v in out["kept_up_readings_per_s"].items())
    )
    print(
        f"lossless and p99 <= {P99_BAR_MS:g} ms (/s): "
        + ", ".join(f"{k} {v:g}" for k, v in out["p99_readings_per_s"].items())
    )
    print(f"raw limit (no Odoo)  : {out['raw_limit_readings_per_s']:>7.0f} readings/s")
    print(f"naive (commit/msg)   : {out['naive_readings_per_s']:>7.0f} readings/s")
    if out["workshop_cpu_pct"] is not None:
        ws = out["details"]["workshop"]
        print(
            f"workshop             : cpu {out['workshop_cpu_pct']}% of a core "
            f"(idle {ws.get('idle_cpu_pct')}%), RSS {out['workshop_rss_mb_start']} -> "
            f"{out['workshop_rss_mb_end']} MB, p99 {out['workshop_p99_ms']} ms, "
            f"lost {out['workshop_lost']}"
        )
    print(
        f"PostgreSQL, one row + COMMIT per round trip: "
        f"{out['pg_single_commit_per_s']}/s (fsync bound of a commit per message)"
    )
    print(
        f"machine: {out['machine'].get('cores')} cores, load avg "
        f"{out['machine'].get('load_avg')}; elapsed {out['elapsed_s']:.0f} s"
    )


def main(argv=None):
    args = parse_args(argv)
    owned = Owned()

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # Also when started in the background of a script (SIGINT ignored there).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    started = time.monotonic()
    code = 0
    out = None
    try:
        drop_stale_databases()
        info = machine_info()
        print(
            f"ingest benchmark: {info.get('cores')} cores, "
            f"Python {info.get('python')}, "
            f"PostgreSQL {info.get('postgresql')}, Mosquitto {info.get('mosquitto')}, "
            f"load avg {info.get('load_avg')}",
            flush=True,
        )
        bench = Bench(args, owned)
        results = bench.run()
        info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        out = summary(results, args, info, time.monotonic() - started)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        code = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the cleanup finish
        owned.cleanup(keep_logs=args.keep_logs)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if out is None:
        return code or 1
    print_summary(out)
    path = pathlib.Path(args.json_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, separators=(",", ":")), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
