"""What the ingest benchmark measures: from PostgreSQL and /proc only.

``CommitWatcher`` polls ``SELECT id, device_ts FROM <table> WHERE id > %s``
every ~50 ms on its own autocommit connection.  The first poll that sees a row
is the row's "commit visible" time (an upper bound of the commit time, within
one poll interval); its latency is that time minus ``device_ts``, which the
load generator set to the send time.  This needs one writer transaction at a
time (ids are taken before the commit): true for the Odoo runner (one bridge
per database) and for both references.

``ProcSampler`` samples the CPU times and RSS of a process every ``interval``.
"""

import bisect
import contextlib
import threading
import time
from array import array

import psutil
import psycopg2


class CommitWatcher(threading.Thread):
    """Records (visible time, device_ts) of every new row of ``table``."""

    def __init__(self, dbname, table, interval=0.05, floor_id=None):
        super().__init__(name=f"watch-{table}", daemon=True)
        self.dbname = dbname
        self.table = table
        self.interval = interval
        self.cnx = psycopg2.connect(dbname=dbname, application_name="owm-bench-watch")
        self.cnx.autocommit = True
        if floor_id is None:
            floor_id = self.max_id()
        self.floor_id = floor_id
        self.last_id = floor_id
        self.visible = array("d")  # wall time of the poll that first saw the row
        self.device_ts = array("d")
        self.polls = 0
        self.max_gap = 0.0  # longest time between two polls (resolution)
        self.error = None
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def max_id(self):
        with self.cnx.cursor() as cur:
            cur.execute(f"SELECT COALESCE(max(id), 0) FROM {self.table}")
            return cur.fetchone()[0]

    def run(self):
        query = (
            f"SELECT id, device_ts FROM {self.table} WHERE id > %s "
            "ORDER BY id LIMIT 100000"
        )
        previous = time.time()
        try:
            while not self._halt.is_set():
                started = time.time()
                self.max_gap = max(self.max_gap, started - previous)
                previous = started
                with self.cnx.cursor() as cur:
                    cur.execute(query, (self.last_id,))
                    rows = cur.fetchall()
                self.polls += 1
                if rows:
                    with self._lock:
                        for _id, ts in rows:
                            if ts is not None:
                                self.visible.append(started)
                                self.device_ts.append(ts)
                        self.last_id = rows[-1][0]
                    if len(rows) == 100000:
                        continue  # a backlog: read on at once
                self._halt.wait(max(0.0, self.interval - (time.time() - started)))
        except Exception as exc:  # reported by the benchmark, never silent
            self.error = exc

    def stop(self):
        self._halt.set()
        self.join(5)
        with contextlib.suppress(psycopg2.Error):
            self.cnx.close()

    def seen_between(self, start_index, ts_from, ts_to):
        """Rows seen after ``start_index`` whose device_ts is in [ts_from, ts_to]."""
        with self._lock:
            tss = self.device_ts[start_index:]
        return sum(1 for ts in tss if ts_from <= ts <= ts_to)

    def mark(self):
        with self._lock:
            return len(self.device_ts)

    def window(self, start_index, ts_from, ts_to):
        """(latencies in s, visible times, device times) of the rows sent in
        [ts_from, ts_to] and seen after ``start_index``, in the order seen."""
        with self._lock:
            vis = self.visible[start_index:]
            tss = self.device_ts[start_index:]
        lat, seen, sent = [], [], []
        for v, ts in zip(vis, tss, strict=True):
            if ts_from <= ts <= ts_to:
                lat.append(v - ts)
                seen.append(v)
                sent.append(ts)
        return lat, seen, sent


def worst_by_bucket(lat, sent, t0, bucket_s):
    """Highest latency (ms) per ``bucket_s`` of send time from ``t0``."""
    worst = {}
    for value, ts in zip(lat, sent, strict=True):
        k = int((ts - t0) // bucket_s)
        if value > worst.get(k, -1.0):
            worst[k] = value
    if not worst:
        return []
    return [round(worst.get(k, 0.0) * 1000) for k in range(max(worst) + 1)]


def percentile(sorted_values, q):
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, int(round(q * len(sorted_values))) - 1))
    return sorted_values[rank]


def count_in(sorted_values, lo, hi):
    return bisect.bisect_right(sorted_values, hi) - bisect.bisect_left(
        sorted_values, lo
    )


class ProcSampler(threading.Thread):
    """CPU seconds and RSS of one process, every ``interval`` seconds."""

    def __init__(self, pid, interval=0.5):
        super().__init__(name=f"sample-{pid}", daemon=True)
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.samples = []  # (wall, cpu_s, rss_mb)
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.sample()

    def sample(self):
        try:
            with self.proc.oneshot():
                times = self.proc.cpu_times()
                rss = self.proc.memory_info().rss / (1024 * 1024)
        except psutil.Error:
            return None
        row = (time.time(), times.user + times.system, rss)
        with self._lock:
            self.samples.append(row)
        return row

    def run(self):
        while not self._halt.wait(self.interval):
            self.sample()

    def stop(self):
        self._halt.set()
        self.join(5)
        self.sample()

    def between(self, t_from, t_to):
        with self._lock:
            return [s for s in self.samples if t_from <= s[0] <= t_to]


def cpu_seconds(pids):
    """Sum of user+system CPU seconds of ``pids`` (vanished ones count 0)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total


def backend_pids(dbname, exclude_app="owm-bench-watch"):
    """PostgreSQL backend pids connected to ``dbname`` (not our watcher)."""
    with contextlib.closing(psycopg2.connect(dbname="postgres")) as cnx:
        cnx.autocommit = True
        with cnx.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s "
                "AND application_name <> %s AND pid <> pg_backend_pid()",
                (dbname, exclude_app),
            )
            return [r[0] for r in cur.fetchall()]
