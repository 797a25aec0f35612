"""One rate step of the ingest benchmark, and a series of them.

A step starts the publishers (loadgen.py, together at one instant), samples
the process under test, PostgreSQL's backends and the broker from /proc while
they send, waits (bounded) for the backlog to drain, then counts rows,
doubles and commit latencies from PostgreSQL (pgwatch.py).  :class:`Stepper`
is that machinery; the sections (ingest_sections.py) choose what it drives.
"""

import contextlib
import json
import math
import os
import subprocess
import sys
import time

import pgwatch
import psutil
import psycopg2
from ingest_owned import BENCH, h
from ingest_report import P99_BAR_MS, best_lossless, print_step

PUBLISHER_MAX_RATE = 7000  # one paho process per this many frames/s
KEPT_UP = 0.95  # committed during the load / offered: no growing backlog
WARMUP_RATE = 200.0
START_DELAY_S = 0.5  # publishers connect, then start together


def _rate_pct(samples):
    """CPU % of one core between the first and last (wall, cpu_s, rss) sample."""
    if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
        return None
    return round(
        (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0]) * 100, 1
    )


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000, 1)


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


class Stepper:
    """Publishers, commit watchers and rate steps against a :class:`Target`."""

    def __init__(self, args, owned):
        self.args = args
        self.owned = owned
        self.py = sys.executable

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
