#!/usr/bin/env python3
"""What the runner's session writes cost per flush, through the ORM, alone.

    python3 bench/session_writes.py [--opens 1 --closes 1 --progress 3]
        [--running 30] [--machines 60] [--history 0] [--flushes 300]
        [--addons bridges|core] [--fetches] [--profile]

The workshop benchmark (``ingest.py``) puts about a fifth of the runner's CPU
on the sessions (8 opens and closes, 12 progress writes a second, in about
4 flushes), but cannot say which part of a flush is which.  This writes the
same ops through the runner's own code (``writer._write_sessions``, then the
flush's ``flush_all``), each flush in a transaction of its own as the runner
does, on a database with the addon and its bridges, and reports the CPU of
the writing thread per flush (median and tenth/ninetieth percentile, the
best of three rounds: noise only ever adds) and its wall time (the
database's work and the commit included).  Defaults: one open, one close
and three progress writes per flush among 30 running sessions, the
workshop's mix.

``--history N``: each machine has N closed sessions first (a workshop after
some years: what a write may read grows with it).  ``--fetches``: one
flush's ORM reads, model by model (the fields and records each query read
and its CPU, the field whose read fetched them), the reads every
transaction repeats included.  ``--profile``:
cProfile (CPU clock) of 100 flushes.  The last line is JSON.

Runs under Odoo's Python (``tools/bootstrap_odoo.sh``); builds its own
database and drops it.
"""

import argparse
import cProfile
import io
import json
import pathlib
import pstats
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import owm_harness as h  # noqa: E402
from harness_base import ADDON, addons_path, bridge_addons  # noqa: E402

DB = "owm_bench_session_writes"
T0 = 1_790_000_000.0


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--opens", type=int, default=1)
    ap.add_argument("--closes", type=int, default=1)
    ap.add_argument("--progress", type=int, default=3)
    ap.add_argument("--running", type=int, default=30)
    ap.add_argument("--machines", type=int, default=60)
    ap.add_argument("--history", type=int, default=0)
    ap.add_argument("--flushes", type=int, default=300)
    ap.add_argument("--addons", choices=("bridges", "core"), default="bridges")
    ap.add_argument("--fetches", action="store_true")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    if args.running + args.opens + args.closes > args.machines:
        ap.error("--machines must be at least --running + --opens + --closes")
    if args.progress + args.closes > args.running:
        ap.error("--running must reach --progress + --closes")
    return args


class Workshop:
    """Machines whose sessions open, progress and close flush after flush."""

    def __init__(self, registry, args):
        # Odoo's modules are importable once the registry is loaded.
        from odoo.addons.open_workshop_mqtt.services.engine import batch, types

        self.registry = registry
        self.args = args
        self.batch, self.types = batch, types
        self.running = {}  # machine id -> (session id, start)
        self.ts = T0 + 10 * 365 * 86400.0  # after any history
        with registry.cursor() as cr:
            env = self.env(cr)
            conn = env["mqtt.connection"].create(
                {"name": "Bench", "host": "127.0.0.1", "port": 1883}
            )
            machines = env["mqtt.device"].create(
                [
                    {
                        "name": f"Machine {i}",
                        "connection_id": conn.id,
                        "topic_prefix": f"bench/{i}",
                        "poll_interval_s": 0,
                    }
                    for i in range(args.machines)
                ]
            )
            self.idle = list(machines.ids)
            if args.history:
                _history(cr, machines, args.history)
                machines._recompute_usage()

    def env(self, cr):
        from odoo import SUPERUSER_ID, api

        return api.Environment(cr, SUPERUSER_ID, {})

    def works(self):
        """One flush's ops: opens of idle machines, closes and progress of
        running ones (the longest running close first)."""
        b, t = self.batch, self.types
        self.ts += 1.0
        works = []
        running = list(self.running.items())
        # Until ``--running`` sessions run, nothing closes (the warm-up).
        closes = self.args.closes if len(running) >= self.args.running else 0
        for dev_id, (sid, start) in running[:closes]:
            summary = _summary(t, start, self.ts, "power_drop")
            works.append(b.SessionWork(dev_id, "", [b.CloseSession(summary)], sid))
        progress = running[closes:][: self.args.progress]
        for dev_id, (sid, start) in progress:
            summary = _summary(t, start, self.ts, None)
            works.append(b.SessionWork(dev_id, "", [b.UpdateSession(summary)], sid))
        for dev_id in self.idle[: self.args.opens]:
            works.append(b.SessionWork(dev_id, "", [b.OpenSession(self.ts, False)]))
        return works

    def flush(self, profiler=None):
        """Write one flush's works in one transaction; its CPU and its wall
        time (the database's work included) in ms."""
        from odoo.addons.open_workshop_mqtt.services.runner import writer

        works = self.works()
        with self.registry.cursor() as cr:
            env = self.env(cr)
            started, wall = time.thread_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            ids = writer._write_sessions(env, works)
            env.flush_all()
            if profiler:
                profiler.disable()
            spent = time.thread_time() - started
        wall = time.perf_counter() - wall  # the commit included
        for work in works:
            op = work.ops[0]
            if type(op) is self.batch.OpenSession:
                self.idle.remove(work.device_id)
                self.running[work.device_id] = (ids[work.device_id], op.start_ts)
            elif type(op) is self.batch.CloseSession:
                del self.running[work.device_id]
                self.idle.append(work.device_id)
        return spent * 1000.0, wall * 1000.0


def _summary(types, start, now, end_reason):
    """A session's summary at ``now``: a fifth of its time in standby, the
    rest working at 720 W (every figure grows, as a real one's does)."""
    total = now - start
    return types.SessionSummary(
        start,
        now if end_reason else None,
        0.2 * total,
        0.8 * total,
        0.2 * total,
        end_reason,
    )


def _history(cr, machines, count):
    """``count`` closed sessions per machine, in SQL (the ORM would take hours)."""
    cr.execute(
        """
        INSERT INTO mqtt_session (device_id, company_id, connection_id, start_ts,
            end_ts, last_update_ts, start_time, end_time, state, origin,
            standby_duration_s, working_duration_s, energy_wh, end_reason)
        SELECT d.id, d.company_id, d.connection_id, %(t0)s + n * 600,
            %(t0)s + n * 600 + 300, %(t0)s + n * 600 + 300,
            to_timestamp(%(t0)s + n * 600) AT TIME ZONE 'UTC',
            to_timestamp(%(t0)s + n * 600 + 300) AT TIME ZONE 'UTC',
            'closed', 'power', 60, 240, 50, 'power_drop'
        FROM mqtt_device d, generate_series(1, %(count)s) AS n
        WHERE d.id IN %(ids)s
        """,
        {"t0": T0, "count": count, "ids": tuple(machines.ids)},
    )
    cr.execute("ANALYZE mqtt_session")


def fetches(shop):
    """One flush's ORM reads: [(model, fields, records, CPU ms, the field
    whose read fetched them, "" for an explicit fetch)]."""
    from odoo import models

    seen, trigger = [], []
    fetch_query, fetch_field = (
        models.BaseModel._fetch_query,
        models.BaseModel._fetch_field,
    )

    def watched_field(self, field):
        trigger.append(field.name)
        try:
            return fetch_field(self, field)
        finally:
            trigger.pop()

    def watched_query(self, query, fields):
        started = time.thread_time()
        result = fetch_query(self, query, fields)
        spent = (time.thread_time() - started) * 1000.0
        by = trigger[-1] if trigger else ""
        seen.append((self._name, len(fields), len(self._ids), round(spent, 3), by))
        return result

    models.BaseModel._fetch_query = watched_query
    models.BaseModel._fetch_field = watched_field
    try:
        shop.flush()
    finally:
        models.BaseModel._fetch_query = fetch_query
        models.BaseModel._fetch_field = fetch_field
    return seen


def measure(shop, flushes):
    """Median, 10th and 90th percentile of ``flushes`` flushes' CPU, and the
    median wall time (ms)."""
    cpu, wall = zip(*(shop.flush() for _ in range(flushes)), strict=True)
    deciles = statistics.quantiles(cpu, n=10)
    return statistics.median(cpu), deciles[0], deciles[-1], statistics.median(wall)


def main():
    args = parse_args()
    modules = [ADDON] + (bridge_addons() if args.addons == "bridges" else [])
    log = pathlib.Path(tempfile.gettempdir()) / f"{DB}.log"
    print(f"building {DB} ({', '.join(modules)}) ...", flush=True)
    h.create_template(DB, log, modules=modules)
    try:
        import odoo
        from odoo.modules.registry import Registry

        odoo.tools.config.parse_config(
            ["-d", DB, f"--addons-path={addons_path()}", "--log-level=warn"]
        )
        shop = Workshop(Registry(DB), args)
        for _ in range(args.running + 30):  # warm up: caches, sessions running
            shop.flush()
        rounds = [measure(shop, args.flushes) for _ in range(3)]
        median, p10, p90, wall = min(rounds)
        mix = f"{args.opens} open, {args.closes} close, {args.progress} progress"
        print(
            f"{mix} per flush, {args.machines} machines, {args.history} closed "
            f"sessions each: CPU per flush {median:.2f} ms (p10 {p10:.2f}, p90 "
            f"{p90:.2f}; rounds' medians {', '.join(f'{r[0]:.2f}' for r in rounds)}), "
            f"wall {wall:.2f} ms"
        )
        result = {
            "opens": args.opens,
            "closes": args.closes,
            "progress": args.progress,
            "machines": args.machines,
            "history": args.history,
            "addons": args.addons,
            "cpu_ms_per_flush": round(median, 3),
            "p10_ms": round(p10, 3),
            "p90_ms": round(p90, 3),
            "round_medians_ms": [round(r[0], 3) for r in rounds],
            "wall_ms_per_flush": round(wall, 3),
        }
        if args.fetches:
            reads = fetches(shop)
            print("one flush's reads (model, fields, records, CPU ms, read of):")
            for model, names, records, spent, by in reads:
                print(f"  {model:22} {names:3d} {records:4d} {spent:7.3f}  {by}")
            result["fetches"] = reads
        if args.profile:
            profiler = cProfile.Profile(time.thread_time)
            for _ in range(100):
                shop.flush(profiler)
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
            print(out.getvalue())
        print(json.dumps(result))
    finally:
        h.drop_database(DB)


if __name__ == "__main__":
    main()
