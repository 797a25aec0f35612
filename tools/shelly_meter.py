"""The virtual PM Mini Gen3 of shelly_sim.py: frames and physics, no MQTT.

:class:`Meter` turns a machine profile (shelly_profiles.py) and a seed into
the firmware's frames in simulated time; shelly_sim.py's docstring describes
the dialect and the physics.  Pure and repeatable, so tests and
demo_history.py replay it without a broker.
"""

import json
import math
import random
import re
import time
from collections.abc import Iterator
from typing import NamedTuple

try:
    from shelly_profiles import Profile, make_profile
except ModuleNotFoundError:  # imported as tools.shelly_meter
    from tools.shelly_profiles import Profile, make_profile

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
