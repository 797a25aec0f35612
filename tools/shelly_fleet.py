"""The MQTT side of shelly_sim.py: meter specs, connections, the player thread.

:class:`Fleet` plays :class:`~shelly_meter.Meter` s on a broker in
(accelerated) real time: one player thread advances every meter and publishes
its frames through one client per meter (with its Last Will) or one shared
client for large fleets; polls are answered from the same thread.
"""

import heapq
import os
import queue
import threading
import time
from collections.abc import Iterable

try:
    from shelly_meter import DEVICE_ID, KINDS, MODEL, Meter
    from shelly_meter_3em import make_meter
    from shelly_profiles import MIXED, PROFILES
except ModuleNotFoundError:  # imported as tools.shelly_fleet
    from tools.shelly_meter import DEVICE_ID, KINDS, MODEL, Meter
    from tools.shelly_meter_3em import make_meter
    from tools.shelly_profiles import MIXED, PROFILES

PER_METER_CLIENTS_MAX = 20  # above this a fleet shares one MQTT client
# paho walks its whole queue on every PUBACK: a short queue and a window of
# 100 in flight publish ~3x faster at QoS 1 here than 1,000 in flight.
MAX_INFLIGHT = 100
MAX_PENDING = 4000  # frames a client may have waiting for the broker


def parse_devices(text: str) -> list[tuple[str, str, str | None]]:
    """``"laser:<id>,saw:<id>:<prefix>"`` -> ``[(profile, device id, prefix)]``."""
    specs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        profile, _, rest = item.partition(":")
        device_id, _, prefix = rest.partition(":")
        if profile not in PROFILES or not DEVICE_ID.fullmatch(device_id):
            raise ValueError(
                f"{item!r}: expected <profile>:<device id>[:<prefix>] with a profile "
                f"in {', '.join(PROFILES)} and an id like {MODEL}-d0ca5e000001"
            )
        specs.append((profile, device_id, prefix or None))
    if not specs:
        raise ValueError("no devices given")
    return specs


def fleet_specs(
    count: int,
    profile: str = "mixed",
    prefix_base: str = f"{MODEL}-",
    first_mac: str = "d0ca5e000001",
) -> list[tuple[str, str, str]]:
    """``count`` meters with consecutive MACs; ``mixed`` cycles the profiles."""
    if profile != "mixed" and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}")
    base = int(first_mac, 16)
    specs = []
    for i in range(count):
        mac = f"{base + i:012x}"
        name = MIXED[i % len(MIXED)] if profile == "mixed" else profile
        specs.append((name, f"{MODEL}-{mac}", f"{prefix_base}{mac}"))
    return specs


def _make_meter(spec, seed, schedule, status_topic) -> Meter:
    if isinstance(spec, Meter):
        return spec
    if isinstance(spec, str):
        spec = parse_devices(spec)[0]
    profile, device_id, *rest = spec
    prefix = rest[0] if rest else None
    return make_meter(
        device_id,
        profile,
        prefix,
        seed=seed,
        schedule=schedule,
        status_topic=status_topic,
    )


class _Link:
    """One MQTT connection and the meters that publish through it."""

    def __init__(self, fleet, client_id, meters, will):
        import paho.mqtt.client as mqtt

        self.fleet = fleet
        self.client_id = client_id
        self.meters = meters
        self.routes = {m.rpc_topic: m for m in meters}
        self.ready = threading.Event()  # connected and subscribed
        self.connects = 0
        self.error = None
        self.cut = False
        self.sent = 0  # handed to paho (player thread only)
        self.done = 0  # acknowledged (QoS 1) or written (QoS 0) (network thread only)
        self.no_conn = mqtt.MQTT_ERR_NO_CONN
        self._subs = set()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(0.5, 10)
        if will:
            client.will_set(meters[0].online_topic, "false", 1, fleet.retain)
        if fleet.username is not None:
            client.username_pw_set(fleet.username, fleet.password)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.client = client

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.error = f"connection refused: {reason_code}"
            return
        self.connects += 1
        topics = [(topic, 1) for topic in self.routes]
        self._subs = set()
        for i in range(0, len(topics), 200):
            self._subs.add(client.subscribe(topics[i : i + 200])[1])
        if self.connects > 1:  # a real device announces itself again
            self.fleet._call(self.fleet._reannounce, self)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if any(code.is_failure for code in reason_codes):
            self.error = f"subscription refused: {reason_codes}"
        self._subs.discard(mid)
        if not self._subs:
            self.ready.set()

    def _on_connect_fail(self, client, userdata):
        self.error = "connection failed"

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.ready.clear()
        if reason_code.is_failure:
            self.error = f"disconnected: {reason_code}"

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self.done += 1

    def _on_message(self, client, userdata, message):
        meter = self.routes.get(message.topic)
        if meter is not None:
            self.fleet._call(self.fleet._answer, self, meter, message.payload)


class Fleet:
    """Plays meters on an MQTT broker in (accelerated) real time.

    ``meters``: :class:`Meter` objects (used as they are) or specs
    ``"profile:device_id[:prefix]"`` / ``(profile, device_id[, prefix])``,
    built with this fleet's ``seed``, ``schedule`` and ``status_topic``.
    One player thread advances every meter to the simulated "now" and
    publishes its frames; poll requests are answered from that thread too,
    so a meter is never touched by two threads.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        meters: Iterable = (),
        speed: float = 1.0,
        seed=1,
        qos: int = 1,
        *,
        schedule: str = "busy",
        status_topic: bool = False,
        retain: bool = True,
        per_meter_clients: bool | None = None,
        start_ts: float | None = None,
        keepalive: int = 60,
        username: str | None = None,
        password: str | None = None,
        connect_timeout: float = 10.0,
        verbose: bool = False,
        out=None,
    ):
        if not speed > 0:
            raise ValueError("speed must be > 0")
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        self.meters = [_make_meter(m, seed, schedule, status_topic) for m in meters]
        if not self.meters:
            raise ValueError("a fleet needs at least one meter")
        for attr in ("device_id", "prefix"):
            values = [getattr(m, attr) for m in self.meters]
            if len(set(values)) != len(values):
                raise ValueError(f"two meters share a {attr}")
        if per_meter_clients is None:
            per_meter_clients = len(self.meters) <= PER_METER_CLIENTS_MAX
        self.host, self.port, self.speed, self.qos = host, port, float(speed), qos
        self.retain = retain
        self.per_meter_clients = per_meter_clients
        self.start_ts = start_ts
        self.keepalive = keepalive
        self.username, self.password = username, password
        self.connect_timeout = connect_timeout
        self.verbose = verbose
        self.out = out
        self.unsent = 0  # frames paho dropped (QoS 0 while disconnected)
        self.throttled_s = 0.0  # wall time the player waited for the broker
        self.max_lag_s = 0.0  # worst delay of a frame behind its wall time
        self._links = []
        self._link_of = []
        self._calls = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cut = set()
        self._thread = None
        self._t0 = self._stopped_at = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> "Fleet":
        """Connect (and subscribe) every client, then start the clock."""
        if self._thread is not None:
            raise RuntimeError("already started")
        if self.per_meter_clients:
            self._links = [_Link(self, m.device_id, [m], True) for m in self.meters]
            self._link_of = self._links[:]
        else:
            client_id = f"shelly-sim-{os.getpid()}-{os.urandom(3).hex()}"
            self._links = [_Link(self, client_id, self.meters, False)]
            self._link_of = self._links * len(self.meters)
        for link in self._links:
            link.client.connect_async(self.host, self.port, self.keepalive)
            link.client.loop_start()
        deadline = time.monotonic() + self.connect_timeout
        for link in self._links:
            if not link.ready.wait(max(0.0, deadline - time.monotonic())):
                self._close_links()
                raise ConnectionError(
                    f"{link.client_id}: not connected and subscribed to "
                    f"{self.host}:{self.port} within {self.connect_timeout:g} s "
                    f"({link.error or 'no answer'})"
                )
        start_ts = self.start_ts
        if start_ts is None:
            start_ts = self.start_ts = round(time.time(), 2)
        for meter in self.meters:
            if meter.start_ts is None:
                meter.start_ts = start_ts
        self._t0 = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, name="shelly-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> dict:
        """Publish nothing more, disconnect cleanly (no Last Will), return stats.

        Waits at most ``timeout`` for the player thread and as long again for
        paho's network threads, which finish only once the broker took the
        DISCONNECT (paho's ``loop_stop`` has no timeout): a broker that does
        not read leaves them behind as daemon threads, not a hung process."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._t0 is not None and self._stopped_at is None:
            self._stopped_at = time.monotonic()
        closer = threading.Thread(
            target=self._close_links, name="shelly-sim-close", daemon=True
        )
        closer.start()
        closer.join(timeout)
        return self.stats

    def _close_links(self):
        for link in self._links:
            if not link.cut:
                link.client.disconnect()
        for link in self._links:
            link.client.loop_stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def sim_now(self) -> float:
        """Simulated seconds since the start."""
        if self._t0 is None:
            return 0.0
        return ((self._stopped_at or time.monotonic()) - self._t0) * self.speed

    @property
    def stats(self) -> dict:
        frames = dict.fromkeys(KINDS, 0)
        for meter in self.meters:
            for kind, count in meter.counts.items():
                frames[kind] += count
        return {
            "meters": len(self.meters),
            "clients": len(self._links),
            "speed": self.speed,
            "wall_s": round(self.sim_now() / self.speed, 3),
            "sim_s": round(self.sim_now(), 2),
            "frames": frames,
            "published": sum(frames.values()),
            "acked": sum(link.done for link in self._links),
            "unsent": self.unsent,
            "throttled_s": round(self.throttled_s, 3),
            "max_lag_s": round(self.max_lag_s, 3),
        }

    def cut_power(self, device_id: str, timeout: float = 2.0) -> None:
        """Drop a meter's connection without DISCONNECT, as a power cut does:
        the broker publishes its Last Will and the meter stays silent.
        Needs per-meter clients (a shared connection has no per-meter will)."""
        if not self.per_meter_clients:
            raise ValueError("cut_power needs per-meter clients")
        link = next((k for k in self._links if k.client_id == device_id), None)
        if link is None or self._thread is None:
            raise ValueError(f"no running meter {device_id!r}")
        done = threading.Event()
        self._call(self._cut_link, link, done)
        if not done.wait(timeout):
            raise TimeoutError(f"power cut of {device_id} not done in {timeout} s")

    # -- player thread -------------------------------------------------------
    def _call(self, func, *args):
        self._calls.put((func, args))
        self._wake.set()

    def _run(self):
        heap = [(0.0, i) for i in range(len(self.meters))]
        meters, links, speed, stop = self.meters, self._link_of, self.speed, self._stop
        while not stop.is_set():
            now = self.sim_now()
            while not self._calls.empty() and not stop.is_set():
                func, args = self._calls.get()
                func(now, *args)
            if heap and heap[0][0] <= now:
                self.max_lag_s = max(self.max_lag_s, (now - heap[0][0]) / speed)
            while heap and heap[0][0] <= now and not stop.is_set():
                i = heapq.heappop(heap)[1]
                meter = meters[i]
                if meter.device_id in self._cut:
                    continue
                for frame in meter.frames(now):
                    self._publish(links[i], meter, frame)
                heapq.heappush(heap, (meter.next_t, i))
            delay = (heap[0][0] - self.sim_now()) / speed if heap else 0.1
            self._wake.wait(min(max(delay, 0.002), 0.1))
            self._wake.clear()

    def _publish(self, link, meter, frame):
        if frame.topic == meter.online_topic:
            self._send(link, frame, 1, self.retain)
        else:
            self._send(link, frame, self.qos, False)

    def _send(self, link, frame, qos, retain):
        if link.sent - link.done >= MAX_PENDING:
            self._throttle(link)
        rc = link.client.publish(frame.topic, frame.payload, qos, retain).rc
        if rc == 0 or (qos and rc == link.no_conn):  # QoS 1: sent on reconnect
            link.sent += 1
        else:
            self.unsent += 1
        if self.verbose:
            print(f"{frame.device_ts:.2f} {frame.topic} {frame.payload}", file=self.out)

    def _throttle(self, link):
        """Back-pressure: wait until the broker caught up (paho slows down
        with a long queue, and drops QoS 1 frames once 65,535 wait for their
        PUBACK).  The simulated clock goes on: the lag shows in ``max_lag_s``."""
        began = time.monotonic()
        while link.sent - link.done > MAX_PENDING // 2 and not self._stop.is_set():
            time.sleep(0.001)
        self.throttled_s += time.monotonic() - began

    def _answer(self, now, link, meter, payload):
        if link.cut:
            return
        for frame in meter.frames(now):
            self._publish(link, meter, frame)
        frame = meter.reply(payload, now)
        if frame is not None:
            self._send(link, frame, 1, False)

    def _reannounce(self, now, link):
        if link.cut:
            return
        for meter in link.meters:
            for frame in [*meter.frames(now), *meter.connect_frames(now)]:
                self._publish(link, meter, frame)

    def _cut_link(self, now, link, done):
        link.cut = True  # from now on nothing is published on it
        self._cut.update(m.device_id for m in link.meters)
        # paho's loop_stop waits out its network thread's select (<= 1 s):
        # not in the player thread, the other meters must keep their pace.
        threading.Thread(target=self._pull_plug, args=(link, done)).start()

    @staticmethod
    def _pull_plug(link, done):
        link.client.loop_stop()  # first, or paho would reconnect
        sock = link.client.socket()
        if sock is not None:
            sock.close()  # no DISCONNECT: the broker fires the Last Will
        done.set()
