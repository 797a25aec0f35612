"""The load of the ingest benchmark: Shelly PM Mini Gen3 NotifyStatus frames.

Run as a process of its own (``python3 bench/loadgen.py '<json spec>'``), one
paho client, QoS 1, no inflight or queue limit, paced by a token bucket on the
monotonic clock.  It prints ONE JSON line at the end: how many frames it
published and how many the broker acknowledged (PUBACK), the wall-clock send
window and how far the pacing fell behind the schedule.

Each frame's ``params.ts`` is the wall-clock send time (the meter's clock is
synced to ours), unique and increasing per meter, so PostgreSQL's
``device_ts`` tells the benchmark both *which* frame a row is and when it was
sent.  Power follows a per-meter on/off cycle (seeded): sessions open and
close while the load runs.

Imported by bench/ingest.py for the device names and the frame shape; no
Odoo, no psycopg2 here.
"""

import ctypes
import json
import os
import random
import resource
import signal
import sys
import time

TOPIC_FMT = "{prefix}/events/rpc"
# A NotifyStatus delta as the PM Mini Gen3 sends it: only what changed.
_DELTA = (
    '{"src":"%s","dst":"%s/events","method":"NotifyStatus",'
    '"params":{"ts":%.3f,"pm1:0":{"id":0,"current":%.3f,"apower":%.1f}}}'
)
# Once a minute the firmware adds the energy counters (minute boundary).
_MINUTE = (
    '{"src":"%s","dst":"%s/events","method":"NotifyStatus",'
    '"params":{"ts":%.3f,"pm1:0":{"id":0,"voltage":%.1f,"current":%.3f,'
    '"apower":%.1f,"aenergy":{"by_minute":[%.3f,0.000,0.000],"minute_ts":%d,'
    '"total":%.3f},"ret_aenergy":{"by_minute":[0.000,0.000,0.000],'
    '"minute_ts":%d,"total":0.000}}}}'
)


def prefix(tag, index):
    """Topic prefix (= Shelly device id) of meter ``index`` of a section."""
    return f"shellypmminig3-{tag}{index:06d}"


class Meter:
    """One simulated meter: an on/off cycle on the wall clock, energy counter."""

    __slots__ = (
        "prefix",
        "on_s",
        "period",
        "phase",
        "watts",
        "last_ts",
        "energy",
        "minute",
    )

    def __init__(self, name, rng, on_s, off_s):
        self.prefix = name
        self.on_s = rng.uniform(*on_s)
        self.period = self.on_s + rng.uniform(*off_s)
        self.phase = rng.uniform(0, self.period)
        self.watts = rng.uniform(500.0, 900.0)
        self.last_ts = 0.0
        self.energy = rng.uniform(1000.0, 50000.0)
        self.minute = None

    def frame(self, now, jitter):
        ts = round(now, 3)
        if ts <= self.last_ts:
            ts = self.last_ts + 0.001
        if self.last_ts:
            self.energy += self.power(self.last_ts) * (ts - self.last_ts) / 3600.0
        self.last_ts = ts
        power = self.power(ts)
        if power:
            power += jitter
        current = power / 230.0
        minute = int(ts // 60)
        if minute != self.minute:
            self.minute = minute
            return _MINUTE % (
                self.prefix,
                self.prefix,
                ts,
                229.0 + jitter / 10.0,
                current,
                power,
                power / 60.0,
                minute * 60,
                self.energy,
                minute * 60,
            )
        return _DELTA % (self.prefix, self.prefix, ts, current, power)

    def power(self, ts):
        return self.watts if (ts + self.phase) % self.period < self.on_s else 0.0


def _die_with_parent():
    """Linux: SIGTERM this process when the benchmark process dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run(spec):
    import paho.mqtt.client as mqtt

    rng = random.Random(spec.get("seed", 1))
    names = spec["prefixes"]
    meters = [
        Meter(n, rng, spec.get("on_s", (3, 5)), spec.get("off_s", (3, 5)))
        for n in names
    ]
    order = list(range(len(meters)))
    rng.shuffle(order)  # meter-specific phases: not one burst per meter group
    topics = [TOPIC_FMT.format(prefix=m.prefix) for m in meters]
    rate = float(spec["rate"])
    duration = float(spec["duration"])
    total = int(round(rate * duration))
    acked = [0]

    def on_publish(client, userdata, mid, reason_code, properties):
        acked[0] += 1

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=spec.get("client_id", f"owm-bench-pub-{os.getpid()}"),
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    client.max_inflight_messages_set(0)  # 0: no limit
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", spec["port"], keepalive=30)
    deadline = time.monotonic() + 10
    while not client.is_connected():
        client.loop(timeout=0.05)
        if time.monotonic() > deadline:
            raise SystemExit("publisher: broker did not accept the connection")
    # Start together with the other publisher processes (wall clock).
    start_at = spec.get("start_at")
    while start_at and time.time() < start_at:
        client.loop(timeout=min(0.05, max(0.0, start_at - time.time())))
    qos = spec.get("qos", 1)
    tick = spec.get("tick_s", 0.002)
    publish = client.publish
    n_meters = len(meters)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    wall_first = time.time()
    published = 0
    max_lag = 0.0
    behind_ticks = 0
    rand = rng.uniform
    while published < total:
        now = time.monotonic()
        due = min(total, int((now - t0) * rate) + 1)
        if due - published > 1:
            # Seconds behind the schedule (the work of one tick is normal).
            lag = (due - published - 1) / rate
            if lag > max_lag:
                max_lag = lag
            if lag > 0.05:
                behind_ticks += 1
        wall = time.time()
        while published < due:
            i = order[published % n_meters]
            payload = meters[i].frame(wall, rand(-15.0, 15.0))
            publish(topics[i], payload, qos=qos)
            published += 1
        client.loop(timeout=tick)  # PUBACKs in; wakes early when they come
    wall_last = time.time()
    drain_until = time.monotonic() + spec.get("ack_timeout_s", 30.0)
    while acked[0] < published and time.monotonic() < drain_until:
        client.loop(timeout=0.05)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    client.disconnect()
    window = max(1e-6, wall_last - wall_first)
    return {
        "published": published,
        "sent": acked[0],
        "t_first": wall_first,
        "t_last": wall_last,
        "achieved_rate": published / window,
        "max_lag_ms": round(max_lag * 1000, 1),
        "behind_ticks": behind_ticks,
        "cpu_s": round(
            cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 3
        ),
    }


def main():
    _die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
    spec = json.loads(sys.argv[1])
    result = run(spec)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
