#!/usr/bin/env python3
"""Shelly PM Mini Gen3 fleet simulator: realistic, repeatable MQTT meter traffic.

Each virtual meter (device id ``shellypmminig3-<12 hex>``, component ``pm1:0``)
plays a machine profile (see shelly_profiles.py) and speaks the firmware's
MQTT dialect (DESIGN.md "Shelly specifics"):

- ``<prefix>/online``: ``true`` after connect; ``false`` is its Last Will.
- ``<prefix>/events/rpc``: a ``NotifyFullStatus`` after connect, then
  ``NotifyStatus`` deltas with only the changed ``pm1:0`` fields.  Power is
  reported when it moved from the last reported value by >= 5 % and >= 1 W
  (voltage and current ride along when they changed); once per simulated
  minute an energy-only delta: ``aenergy.total`` (Wh), ``by_minute`` (mWh:
  [0] the current partial minute, [1] and [2] the two whole minutes before)
  and ``minute_ts`` (start of the current minute).
- ``<prefix>/status/pm1:0``: the full status after every NotifyStatus, when
  "generic status update" is on (``--status-topic``; off by default).
- ``<prefix>/rpc``: answers ``PM1.GetStatus`` (and ``Shelly.GetStatus``) on
  ``<request src>/rpc`` at QoS 1; any other method gets error 404.

Physics: the power is sampled once per simulated second and held in between;
``aenergy.total`` is the exact integral of those samples, so the counter
agrees with the power stream (within the 5 % reporting tolerance).  Voltage
is ~230 V with slow noise and a small sag under load, current = P / V,
``freq`` 50.0.

Time and repeatability: ``--speed 10`` plays 10 simulated seconds per wall
second; the device clock (``params.ts``) starts at ``--start-ts`` (default:
now) and advances by simulated time.  Every frame is computed in simulated
time from ``--seed`` alone, so the same seed and start time give the same
frames at any speed and whatever the wall-clock jitter (poll replies and the
re-announcement after a reconnect are answers to the outside world: they are
extra frames, they never change the others).

Stopping: SIGINT/SIGTERM (or ``Fleet.stop``) publishes nothing more and
disconnects cleanly within 2 s.  A clean MQTT disconnect does NOT fire the
Last Will: the broker keeps the retained ``online`` = ``true``.  To have the
bridge see a meter go offline, use ``Fleet.cut_power(device_id)`` (drops the
connection without DISCONNECT, as a power cut does) or clear the retained
flag: ``mosquitto_pub -t <prefix>/online -r -m false``.

Clients: up to 20 meters (or with ``--per-meter-clients``) each meter has its
own MQTT client (client id = device id, Last Will, one paho network thread
each).  Larger fleets share ONE client for publishing and polls: no
per-meter Last Will then (a connection has a single will), which keeps
1,000 meters in one process.

Usage::

    python3 tools/shelly_sim.py --devices laser:shellypmminig3-d0ca5e000001,\\
saw:shellypmminig3-d0ca5e000002,printer:shellypmminig3-d0ca5e000003 --speed 10
    python3 tools/shelly_sim.py --count 1000 --profile mixed --speed 20 --qos 0
    python3 tools/shelly_sim.py --count 4 --dump 3600 --start-ts 1767225600 > f.jsonl

Library::

    fleet = Fleet("127.0.0.1", 1883, meters=["laser:shellypmminig3-d0ca5e000001"],
                  speed=10, seed=1, qos=1).start()
    ...; fleet.stop(); fleet.stats
    for topic, payload, device_ts in Meter("shellypmminig3-d0ca5e000001", "saw",
                                           seed=1, start_ts=1767225600.0).frames(1800):
        ...
"""

import argparse
import heapq
import json
import math
import os
import queue
import random
import re
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import NamedTuple

try:
    from shelly_profiles import MIXED, PROFILES, SCHEDULES, Profile, make_profile
except ModuleNotFoundError:  # imported as tools.shelly_sim
    from tools.shelly_profiles import MIXED, PROFILES, SCHEDULES, Profile, make_profile

KINDS = (
    "online",
    "full_status",
    "notify_status",
    "energy",
    "status_topic",
    "rpc_reply",
    "rpc_error",
)
MODEL = "shellypmminig3"
DEVICE_ID = re.compile(r"[a-z0-9]+-[0-9a-f]{12}")
PER_METER_CLIENTS_MAX = 20  # above this a fleet shares one MQTT client
# paho walks its whole queue on every PUBACK: a short queue and a window of
# 100 in flight publish ~3x faster at QoS 1 here than 1,000 in flight.
MAX_INFLIGHT = 100
MAX_PENDING = 4000  # frames a client may have waiting for the broker
DEMO = (
    ("laser", "shellypmminig3-d0ca5e000001"),
    ("saw", "shellypmminig3-d0ca5e000002"),
    ("printer", "shellypmminig3-d0ca5e000003"),
)


def _ret_aenergy(minute_ts):
    """Returned energy: a consumption-only meter's counter stays at zero."""
    zero = '"total":0.000,"by_minute":[0.000,0.000,0.000]'
    return f'{{{zero},"minute_ts":{minute_ts}}}'


class Frame(NamedTuple):
    """One MQTT message as the device would publish it."""

    topic: str
    payload: str
    device_ts: float  # the device clock when it was sent (the frame's ts)


def _valid_prefix(prefix):
    return (
        type(prefix) is str
        and prefix
        and not any(c in prefix for c in "+#\0")
        and "" not in prefix.split("/")
    )


class Meter:
    """One virtual PM Mini Gen3, as a pure frame generator (no MQTT).

    ``frames(until_sim_s)`` yields every frame up to that simulated second
    (0 = start: ``online`` then ``NotifyFullStatus``) and can be called again
    with a later time to go on.  The meter never runs ahead of the time asked
    for, so :meth:`reply` and :meth:`status` answer for "now".
    """

    def __init__(
        self,
        device_id: str,
        profile: "str | Profile" = "laser",
        prefix: str | None = None,
        *,
        seed=1,
        start_ts: float | None = None,
        schedule: str = "busy",
        status_topic: bool = False,
        sample_s: float = 1.0,
    ):
        if type(device_id) is not str or not DEVICE_ID.fullmatch(device_id):
            raise ValueError(
                f"device id must look like '{MODEL}-<12 hex digits>', not {device_id!r}"
            )
        prefix = device_id if prefix is None else prefix
        if not _valid_prefix(prefix):
            raise ValueError(f"invalid topic prefix {prefix!r}")
        if not sample_s > 0:
            raise ValueError("sample_s must be > 0")
        self.device_id = device_id
        self.prefix = prefix
        if isinstance(profile, str):
            profile = make_profile(profile, schedule)
        self.profile = profile
        self.seed = seed
        self.start_ts = start_ts
        self.status_topic = status_topic
        self.sample_s = float(sample_s)
        self.online_topic = f"{prefix}/online"
        self.rpc_topic = f"{prefix}/rpc"
        self._events_topic = f"{prefix}/events/rpc"
        self._status_topic = f"{prefix}/status/pm1:0"
        src, dst = json.dumps(device_id), json.dumps(f"{prefix}/events")
        self._head = f'{{"src":{src},"dst":{dst},"method":"'
        self.counts = dict.fromkeys(KINDS, 0)
        self.horizon = 0.0  # simulated s processed so far
        self.next_t = 0.0  # simulated s of the next internal event
        self._started = False

    def __repr__(self):
        return f"Meter({self.device_id!r}, {self.profile.name!r}, {self.prefix!r})"

    # -- state --------------------------------------------------------------
    @property
    def power(self) -> float:
        """The power measured now (W, 1 decimal as the firmware shows it)."""
        self._begin()
        return self._pd / 10

    @property
    def reported_power(self) -> float:
        """The power the last frame carrying ``apower`` reported (W)."""
        self._begin()
        return self._rep_pd / 10

    @property
    def phase(self) -> str:
        """What the machine does now (the profile segment's phase)."""
        self._begin()
        return self._seg.phase

    def energy_wh(self, at: float | None = None) -> float:
        """The exact (unrounded) counter at simulated second ``at``."""
        at = self._at(at)
        return self._energy + self._p * (at - self._t) / 3600.0

    def _at(self, at):
        self._begin()
        at = self.horizon if at is None else at
        return max(at, self._t)

    def _begin(self):
        if self._started:
            return
        self._started = True
        if self.start_ts is None:
            self.start_ts = round(time.time(), 2)
        tag = f"{self.seed}/{self.device_id}"
        dev = random.Random(f"{tag}/device")
        self._noise = random.Random(f"{tag}/noise")
        self._segments = self.profile.segments(random.Random(f"{tag}/schedule"))
        self._v_nominal = dev.uniform(227.0, 234.0)
        self._v_dev = 0.0
        self._energy = round(dev.uniform(50.0, 60000.0), 3)  # Wh before we start
        self._uptime0 = dev.randint(600, 30 * 86400)
        self._rssi = dev.randint(-78, -48)
        self._ip = f"10.42.{dev.randint(0, 255)}.{dev.randint(2, 254)}"
        self._seg = next(self._segments)
        self._seg_start, self._seg_end = 0.0, self._seg.duration
        self._t = 0.0  # energy integrated up to here
        self._k = 0  # index of the next power sample (at k * sample_s)
        self._sample(0.0)
        minute = math.floor(self.start_ts / 60.0)
        self._minute_ts = minute * 60
        self._next_minute = self._minute_ts + 60.0 - self.start_ts
        self._energy_due = math.inf
        # Before the start the machine drew its initial power.
        self._minute_e = self._energy - self._p * (self.start_ts - minute * 60) / 3600
        self._by_minute = [self._p * 60 / 3.6] * 2  # mWh, the two whole minutes
        self._pending = self.connect_frames(0.0)

    def _sample(self, t):
        """Measure the power at tick ``t`` and schedule the next tick."""
        while t >= self._seg_end:
            self._seg = next(self._segments)
            self._seg_start = self._seg_end
            self._seg_end += self._seg.duration
        seg = self._seg
        watts = seg.watts
        if seg.slope:
            watts += seg.slope * (t - self._seg_start)
        if seg.jitter:
            watts += self._noise.gauss(0.0, seg.jitter)
        p = min(max(watts, seg.lo), seg.hi)
        self._v_dev = 0.97 * self._v_dev + self._noise.gauss(0.0, 0.2)
        v = self._v_nominal + self._v_dev - 0.0008 * p
        self._p = p
        self._pd = round(p * 10)  # deci-watts, deci-volts, milliamps
        self._vd = round(v * 10)
        self._ma = round(p / v * 1000)
        self._k += 1
        if not (seg.jitter or seg.slope):  # constant: skip to the segment's end
            self._k = max(self._k, math.ceil(self._seg_end / self.sample_s))

    # -- frames -------------------------------------------------------------
    def frames(self, until_sim_s: float) -> Iterator[Frame]:
        """Every frame up to simulated second ``until_sim_s``, in time order.

        Lazy: after each yielded frame, :attr:`reported_power` and the other
        state are those of that frame.  Consume it to the end before asking
        for more.
        """
        self._begin()
        if self._pending:
            pending, self._pending = self._pending, []
            yield from pending
        sample_s = self.sample_s
        while True:
            tm, te, tt = self._next_minute, self._energy_due, self._k * sample_s
            t = min(tm, te, tt)
            if t > until_sim_s:
                self.next_t = t
                break
            self._energy += self._p * (t - self._t) / 3600.0
            self._t = t
            if t == tm:
                self._roll_minute(t)
            elif t == te:
                self._energy_due = math.inf
                yield from self._energy_frames(t)
            else:
                self._sample(t)
                yield from self._power_frames(t)
        if until_sim_s > self.horizon:
            self.horizon = until_sim_s

    def advance(self, until_sim_s: float) -> list[Frame]:
        """:meth:`frames` as a list."""
        return list(self.frames(until_sim_s))

    def _roll_minute(self, t):
        whole = max(0.0, (self._energy - self._minute_e) * 1000.0)
        self._by_minute = [whole, self._by_minute[0]]
        self._minute_e = self._energy
        self._minute_ts += 60
        self._next_minute = self._minute_ts + 60.0 - self.start_ts
        self._energy_due = t + 0.01  # the firmware reports just after the minute

    def _ts(self, t):
        return round(self.start_ts + t, 2)

    def _aenergy(self, at, full=True):
        energy = self._energy + self._p * (at - self._t) / 3600.0
        now = max(0.0, (energy - self._minute_e) * 1000.0)
        b1, b2 = self._by_minute
        minute = [f"{now:.3f}", f"{b1:.3f}", f"{b2:.3f}"]
        by_minute = f'"by_minute":[{",".join(minute)}]'
        minute_ts = f'"minute_ts":{self._minute_ts}'
        if full:  # the order of a full status; deltas list by_minute first
            return f'{{"total":{energy:.3f},{by_minute},{minute_ts}}}'
        return f'{{{by_minute},{minute_ts},"total":{energy:.3f}}}'

    def _notify(self, method, ts, params):
        return Frame(
            self._events_topic,
            f'{self._head}{method}","params":{{"ts":{ts:.2f},{params}}}}}',
            ts,
        )

    def _power_frames(self, t):
        pd, last = self._pd, self._rep_pd
        diff = abs(pd - last)
        if diff < 10 or 20 * diff < last:  # < 1 W or < 5 %: not reported
            return
        fields = [f'"apower":{pd / 10:.1f}']
        if self._ma != self._rep_ma:
            fields.append(f'"current":{self._ma / 1000:.3f}')
        if self._vd != self._rep_vd:
            fields.append(f'"voltage":{self._vd / 10:.1f}')
        self._rep_pd, self._rep_ma, self._rep_vd = pd, self._ma, self._vd
        ts = self._ts(t)
        self.counts["notify_status"] += 1
        comp = '"pm1:0":{"id":0,' + ",".join(fields) + "}"
        yield self._notify("NotifyStatus", ts, comp)
        if self.status_topic:
            yield self._status_frame(t, ts)

    def _energy_frames(self, t):
        ts = self._ts(t)
        aenergy, ret = self._aenergy(t, False), _ret_aenergy(self._minute_ts)
        comp = f'"pm1:0":{{"id":0,"aenergy":{aenergy},"ret_aenergy":{ret}}}'
        self.counts["energy"] += 1
        yield self._notify("NotifyStatus", ts, comp)
        if self.status_topic:
            yield self._status_frame(t, ts)

    def _status_frame(self, t, ts):
        self._rep_pd, self._rep_ma, self._rep_vd = self._pd, self._ma, self._vd
        self.counts["status_topic"] += 1
        return Frame(self._status_topic, self.status_json(t), ts)

    def status_json(self, at: float | None = None) -> str:
        """The full ``pm1:0`` status at simulated second ``at`` (firmware text)."""
        at = self._at(at)
        volts, amps, watts = self._vd / 10, self._ma / 1000, self._pd / 10
        aenergy, ret = self._aenergy(at), _ret_aenergy(self._minute_ts)
        # The firmware's own spacing, stray blank before a comma included.
        return (
            f'{{"id":0, "voltage":{volts:.1f}, "current":{amps:.3f}, '
            f'"apower":{watts:.1f} ,"freq":50.0,"aenergy":{aenergy},'
            f'"ret_aenergy":{ret}}}'
        )

    def status(self, at: float | None = None) -> dict:
        """:meth:`status_json` as a dict."""
        return json.loads(self.status_json(at))

    def _device_status(self, at):
        ts = self._ts(at)
        mac = self.device_id[-12:].upper()
        clock = time.strftime("%H:%M", time.gmtime(ts))
        return (
            '"ble":{},"bthome":{},"cloud":{"connected":false},'
            f'"mqtt":{{"connected":true}},"pm1:0":{self.status_json(at)},'
            f'"sys":{{"mac":"{mac}","restart_required":false,"time":"{clock}",'
            f'"unixtime":{int(ts)},"uptime":{self._uptime0 + int(at)},'
            '"ram_size":260252,"ram_free":146612,"fs_size":1048576,'
            '"fs_free":708608,"cfg_rev":12,"kvs_rev":0,"schedule_rev":0,'
            '"webhook_rev":0,"available_updates":{},"reset_reason":3},'
            f'"wifi":{{"sta_ip":"{self._ip}","status":"got ip","ssid":"workshop",'
            f'"rssi":{self._rssi}}},"ws":{{"connected":false}}'
        )

    def connect_frames(self, at: float | None = None) -> list[Frame]:
        """What the device sends after (re)connecting: ``online``, then
        ``NotifyFullStatus`` (and the status topic when enabled)."""
        at = self._at(at)
        ts = self._ts(at)
        self._rep_pd, self._rep_ma, self._rep_vd = self._pd, self._ma, self._vd
        self.counts["online"] += 1
        self.counts["full_status"] += 1
        frames = [
            Frame(self.online_topic, "true", ts),
            self._notify("NotifyFullStatus", ts, self._device_status(at)),
        ]
        if self.status_topic:
            frames.append(self._status_frame(at, ts))
        return frames

    # -- RPC ----------------------------------------------------------------
    def reply(self, payload, at: float | None = None) -> Frame | None:
        """The device's answer to an RPC request received on ``<prefix>/rpc``.

        ``PM1.GetStatus`` (``id`` 0) and ``Shelly.GetStatus`` get a ``result``;
        any other method an ``error`` 404.  A request without a ``src`` cannot
        be answered (None), nor can one that is not a JSON object.
        """
        try:
            request = json.loads(payload)
        except (TypeError, ValueError):
            return None
        if type(request) is not dict or not _valid_prefix(request.get("src")):
            return None
        at = self._at(at)
        src = request["src"]
        method = request.get("method")
        params = request.get("params")
        rid, me, dst = (json.dumps(v) for v in (request.get("id"), self.device_id, src))
        head = f'{{"id":{rid},"src":{me},"dst":{dst},'
        if method == "PM1.GetStatus":
            index = params.get("id", 0) if type(params) is dict else 0
            if index == 0 and type(index) is int:
                body = f'"result":{self.status_json(at)}}}'
            else:
                message = f"Argument 'id', value {json.dumps(index)} not found!"
                body = self._error(-105, message)
        elif method == "Shelly.GetStatus":
            body = f'"result":{{{self._device_status(at)}}}}}'
        else:
            body = self._error(404, f"No handler for {method}")
        self.counts["rpc_reply" if body[1] == "r" else "rpc_error"] += 1
        return Frame(f"{src}/rpc", head + body, self._ts(at))

    @staticmethod
    def _error(code, message):
        return f'"error":{{"code":{code},"message":{json.dumps(message)}}}}}'


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
    return Meter(
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
        """Publish nothing more, disconnect cleanly (no Last Will), return stats."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._t0 is not None and self._stopped_at is None:
            self._stopped_at = time.monotonic()
        self._close_links()
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


# -- command line ---------------------------------------------------------------
def summary(stats: dict) -> str:
    """The one-line exit summary."""
    kinds = ", ".join(f"{kind} {n}" for kind, n in stats["frames"].items())
    return (
        f"shelly_sim: {stats['meters']} meters, {stats['clients']} client(s), "
        f"{stats['wall_s']:.1f} s wall = {stats['sim_s']:.1f} s simulated "
        f"(x{stats['speed']:g}): {stats['published']} frames published ({kinds}); "
        f"unsent {stats['unsent']}, max lag {stats['max_lag_s']:.3f} s"
    )


def dump(meters: list[Meter], until_sim_s: float, out) -> int:
    """Write every frame of ``until_sim_s`` simulated seconds as JSON lines
    ``{"ts", "topic", "payload"}``, all meters merged in device-time order."""
    count = 0
    streams = [meter.frames(until_sim_s) for meter in meters]
    for frame in heapq.merge(*streams, key=lambda frame: frame.device_ts):
        line = {"ts": frame.device_ts, "topic": frame.topic, "payload": frame.payload}
        out.write(json.dumps(line) + "\n")
        count += 1
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shelly_sim.py",
        description="Simulate Shelly PM Mini Gen3 power meters on an MQTT broker.",
        epilog=(
            "Without --devices or --count it plays the demo trio: "
            + ", ".join(f"{p}:{d}" for p, d in DEMO)
            + ". SIGINT/SIGTERM stop it cleanly (exit 0; a clean disconnect does "
            "not fire the Last Will, the retained online=true stays)."
        ),
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=1883)
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--devices",
        help=f"profile:device_id[:prefix],... (profiles: {', '.join(PROFILES)})",
    )
    which.add_argument("--count", type=int, help="a fleet of N meters")
    add("--profile", default="mixed", choices=["mixed", *PROFILES], help="for --count")
    add("--prefix-base", default=f"{MODEL}-", help="--count: prefix = base + MAC")
    add("--first-mac", default="d0ca5e000001", help="--count: MAC of the first meter")
    add(
        "--schedule",
        default="busy",
        choices=SCHEDULES,
        help="busy: first session within 20 s, short gaps (demo); quiet: a workday",
    )
    add("--speed", type=float, default=1.0, help="simulated seconds per wall second")
    add("--seed", type=int, default=1, help="same seed and --start-ts: same frames")
    add("--start-ts", type=float, help="device clock at the start (default: now)")
    add("--duration", type=float, help="wall seconds to run (default: forever)")
    add("--qos", type=int, default=1, choices=(0, 1), help="for telemetry frames")
    add("--status-topic", action="store_true", help="publish <prefix>/status/pm1:0")
    add("--no-retain", action="store_true", help="online and Last Will not retained")
    clients = parser.add_mutually_exclusive_group()
    clients.add_argument(
        "--per-meter-clients",
        dest="per_meter",
        action="store_const",
        const=True,
        help=f"one MQTT client per meter (default up to {PER_METER_CLIENTS_MAX})",
    )
    clients.add_argument(
        "--shared-client",
        dest="per_meter",
        action="store_const",
        const=False,
        help="one MQTT client for all meters (no per-meter Last Will)",
    )
    add("--connect-timeout", type=float, default=10.0, help="s (default 10)")
    add("--username")
    add("--password", help="or set SHELLY_SIM_PASSWORD")
    add("--dump", type=float, metavar="SIM_S", help="no MQTT: print JSON lines")
    add("--verbose", "-v", action="store_true", help="print every frame")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.count is not None:
            if args.count < 1:
                raise ValueError("--count must be >= 1")
            specs = fleet_specs(
                args.count, args.profile, args.prefix_base, args.first_mac
            )
        elif args.devices:
            specs = parse_devices(args.devices)
        else:
            specs = list(DEMO)
        if not args.speed > 0:
            raise ValueError("--speed must be > 0")
        meters = [
            _make_meter(spec, args.seed, args.schedule, args.status_topic)
            for spec in specs
        ]
    except ValueError as exc:
        parser.error(str(exc))
    if args.dump is not None:
        for meter in meters:
            meter.start_ts = args.start_ts
        count = dump(meters, args.dump, sys.stdout)
        print(f"shelly_sim: {count} frames", file=sys.stderr)
        return 0
    fleet = Fleet(
        args.host,
        args.port,
        meters,
        args.speed,
        qos=args.qos,
        retain=not args.no_retain,
        per_meter_clients=args.per_meter,
        start_ts=args.start_ts,
        connect_timeout=args.connect_timeout,
        username=args.username,
        password=args.password or os.environ.get("SHELLY_SIM_PASSWORD"),
        verbose=args.verbose,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        fleet.start()
    except ConnectionError as exc:
        print(f"shelly_sim: {exc}", file=sys.stderr)
        return 1
    names = ", ".join(f"{m.profile.name}:{m.prefix}" for m in meters[:4])
    more = f" and {len(meters) - 4} more" if len(meters) > 4 else ""
    print(
        f"shelly_sim: {names}{more} on {args.host}:{args.port}, x{args.speed:g}, "
        f"seed {args.seed}, start ts {fleet.start_ts:.2f}; Ctrl-C stops",
        flush=True,
    )
    deadline = None if args.duration is None else time.monotonic() + args.duration
    while not stop.is_set():
        left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
        if left <= 0:
            break
        stop.wait(left)
    fleet.stop()
    print(summary(fleet.stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
