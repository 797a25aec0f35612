"""Meters for the tests: Shelly frame publishers and delivery accounting."""

import json
import time
from collections import Counter, deque

from harness_base import free_port, wait_for


class Sent:
    """One frame handed to ``ShellyPublisher.raw``: its MQTT packet id once
    the client took it (``None`` while the publisher still holds it)."""

    __slots__ = ("mid",)

    def __init__(self):
        self.mid = None


class ShellyPublisher:
    """Publishes Shelly PM Mini Gen3 frames as a fleet of meters would (QoS 1).

    A persistent MQTT session of its own, so frames sent while the broker is
    down are delivered after it comes back (as a real client library does),
    and in the order they were sent.  paho alone does not keep that order
    across a reconnect: its CONNACK handler resends what it kept with its
    in-flight count reset to zero, so a frame published between the CONNECT
    and that resend goes out first, and every frame of the outage reaches
    the runner older than one it already merged (``stale``).  So a frame is
    handed to paho only while it is connected and has resent what it kept;
    until then the publisher holds it, and a pump thread hands the held ones
    over, oldest first, as soon as that is so.
    """

    def __init__(self, port, client_id=None, qos=1):
        import threading

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
        # Connects and disconnects seen (written by paho's thread only), and
        # the count at which paho was last found to have resent what it kept.
        self._events = 0
        self._settled_at = -1
        self.client.on_connect = self._unsettle
        self.client.on_disconnect = self._unsettle
        self._lock = threading.Lock()
        self._held = deque()  # (topic, payload, qos, Sent), oldest first
        self._closed = threading.Event()
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        wait_for(self.client.is_connected, 10, "publisher connected")
        self.sent = 0
        self._pump = threading.Thread(target=self._pump_held, daemon=True)
        self._pump.start()

    def _unsettle(self, *_args):
        # Called before paho resends (on_connect) or when it lost the
        # broker: nothing more goes to paho until it has resent.  A count,
        # not a flag the other threads also write: an event while they ask
        # paho cannot be overwritten by their answer.
        self._events += 1

    def _resent(self):
        """Connected, and no kept frame waits for paho's resend."""
        import paho.mqtt.client as mqtt

        client = self.client
        if not client.is_connected():
            return False
        # paho's own bookkeeping: there is no public way to ask it.
        with client._out_message_mutex:  # pylint: disable=protected-access
            kept = client._out_messages.values()  # pylint: disable=protected-access
            return all(m.state != mqtt.mqtt_ms_publish for m in kept)

    def _release(self):
        """Hand the held frames to paho, oldest first, once it may take them
        (called with the lock held)."""
        if self._settled_at != self._events:
            events = self._events
            if self._resent():
                self._settled_at = events
        while self._held and self._settled_at == self._events:
            topic, payload, qos, sent = self._held.popleft()
            sent.mid = self.client.publish(topic, payload, qos=qos).mid

    def _pump_held(self):
        while not self._closed.wait(0.02):
            if self._held:
                with self._lock:
                    self._release()

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
        """Send one frame (or hold it, see the class); returns its ``Sent``."""
        sent = Sent()
        with self._lock:
            self._held.append((topic, payload, self.qos if qos is None else qos, sent))
            self.sent += 1
            self._release()
        return sent

    def flush(self, timeout=30):
        """Wait until the broker acknowledged every QoS 1 frame sent so far."""
        wait_for(
            lambda: not self._held and not self.client._out_messages,  # pylint: disable=protected-access
            timeout,
            "publisher queue to drain",
            interval=0.05,
        )

    def close(self):
        self._closed.set()
        self._pump.join(5)
        self.client.loop_stop()
        self.client.disconnect()


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

    def _dropped_cycles(self, stop_debounce):
        """(start, end, settled) of every cycle whose drop was sent; settled:
        a frame >= the stop debounce after the drop was sent too."""
        n = self.frame_no
        for cycle_start in range(0, n, self.period):
            drop = cycle_start + self.on_frames
            if drop < n:
                start, end = (self.t0 + k * self.step_s for k in (cycle_start, drop))
                yield start, end, drop + stop_debounce / self.step_s < n

    def expected_sessions(self, detector_stop_debounce=15.0):
        """(start, end) of the sessions these frames close (power_drop)."""
        cycles = self._dropped_cycles(detector_stop_debounce)
        return [(start, end) for start, end, settled in cycles if settled]

    def settling_session(self, detector_stop_debounce=15.0):
        """(start, end) of the last cycle when its drop was sent but not the
        frames that end its stop debounce, else None.  The runner's clock goes
        on after the stream stopped and closes it by itself (power_drop at
        the drop) a few seconds later: it may or may not be closed yet."""
        cycles = self._dropped_cycles(detector_stop_debounce)
        return next(((s, e) for s, e, settled in cycles if not settled), None)

    def sessions_match(self, got):
        """``got`` (start, end) power-drop sessions are the ones the frames
        imply, with or without the settling last one."""
        expected = self.expected_sessions()
        settling = self.settling_session()
        return got == expected or (
            settling is not None and got == [*expected, settling]
        )


def raw_log(rpc, device_id, fields=("device_ts", "status", "detail")):
    return rpc.search_read(
        "mqtt.message", [("device_id", "=", device_id)], list(fields), order="id"
    )


def delivery_figures(sent, rows):
    """Frames sent (device times) against the device's raw log rows.

    recorded: rows with status ``reading``; lost: sent frames without one;
    doubled: reading rows beyond one per frame; redelivered: other rows (a
    copy the runner recognised and did not apply, e.g. ``duplicate`` or
    ``not_reading``/``stale``); unrecognised: those of them that are not a
    ``duplicate`` or ``stale`` copy of a recorded frame; unexpected: readings
    nobody sent."""
    from collections import Counter

    readings = Counter(r["device_ts"] for r in rows if r["status"] == "reading")
    others = [r for r in rows if r["status"] != "reading"]
    sent_set = set(sent)
    return {
        "sent": len(sent),
        "recorded": sum(readings.values()),
        "lost": len(sent_set - set(readings)),
        "doubled": sum(n - 1 for n in readings.values() if n > 1),
        "redelivered": len(others),
        "unrecognised": sum(1 for r in others if not _copy_of(r, readings)),
        "unexpected": len(set(readings) - sent_set),
    }


def _copy_of(row, readings):
    """A row the runner logged for a second copy of a frame it had applied
    (a ``stale`` row has no device time: it is read from the payload)."""
    if row["status"] == "duplicate":
        return row["device_ts"] in readings
    if row["status"] != "not_reading" or row["detail"] != "stale":
        return False
    try:
        ts = json.loads(row["payload"])["params"]["ts"]
    except (KeyError, TypeError, ValueError):
        return False
    return ts in readings


def wait_recorded(rpc, device_id, sent, timeout=60):
    """Wait until the raw log of ``device_id`` holds a reading row for every
    frame sent, then return the delivery figures."""
    expected = len(sent)
    domain = [("device_id", "=", device_id), ("status", "=", "reading")]
    try:
        wait_for(
            lambda: rpc("mqtt.message", "search_count", domain) >= expected,
            timeout,
            f"{expected} reading rows of device {device_id}",
            interval=0.5,
        )
    except AssertionError as exc:
        # What did arrive says why: frames lost, or logged as something else.
        rows = raw_log(rpc, device_id, ("device_ts", "status", "detail"))
        statuses = Counter(row["status"] for row in rows)
        figures = delivery_figures(sent, rows)
        raise AssertionError(f"{exc}; raw rows {dict(statuses)}; {figures}") from exc
    time.sleep(0.5)  # anything doubled would arrive right behind
    rows = raw_log(rpc, device_id, ("device_ts", "status", "detail", "payload"))
    return delivery_figures(sent, rows)


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
        self.frames = []  # a ``Sent`` per frame: its packet id
        self._thread = threading.Thread(target=self._run, daemon=True)

    def ts(self, k):
        return self.t0 + k * self.period_s

    def _run(self):
        started = time.monotonic()
        for k, watts in enumerate(self.powers):
            time.sleep(max(0.0, started + k * self.period_s - time.monotonic()))
            self.frames.append(self.pub.notify_status(self.prefix, self.ts(k), watts))
            self.sent.append(self.ts(k))

    @property
    def mids(self):
        """The publisher's packet id of each frame (after its ``flush``)."""
        return [frame.mid for frame in self.frames]

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


def stream_figures(rpc, stream, device_ids, timeout=60):
    """Delivery and session figures of a MeterStream's meters, summed.

    ``sessions_exact``: every device's power-drop sessions are exactly the
    ones the stream implies (a last cycle cut short by the stop is not
    counted: it times out, or closes by the runner's clock, see
    ``MeterStream.settling_session``)."""
    total = dict.fromkeys(
        (
            "sent",
            "recorded",
            "lost",
            "doubled",
            "redelivered",
            "unrecognised",
            "unexpected",
        ),
        0,
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
        total["sessions_exact"] &= stream.sessions_match(
            [(r["start_ts"], r["end_ts"]) for r in rows]
        ) and all(
            abs(r["working_duration_s"] - on_s) < 1e-6
            and abs(r["standby_duration_s"]) < 1e-6
            for r in rows
        )
    return total
