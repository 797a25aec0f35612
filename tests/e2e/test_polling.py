"""Quiet meters: a Shelly reports only changes, so a machine at a steady load
is silent for hours. The runner polls it (PM1.GetStatus over MQTT) and keeps
the session open; when the meter stops answering, the session times out at
its last answer. The meter's clock is four minutes ahead (a skewed clock the
runner still believes; more than five and it reads at receive time):
replies carry no device time, the runner puts them on the meter's clock,
and no false timeout follows."""

import json
import threading
import time

import owm_harness as h
import paho.mqtt.client as mqtt
import pytest

SKEW_S = 240.0  # the meter's clock runs four minutes ahead of ours


class QuietMeter:
    """Says its power once, then only answers polls (while ``answering``)."""

    def __init__(self, port, prefix, watts):
        self.prefix = prefix
        self.watts = watts
        self.answering = threading.Event()
        self.answering.set()
        self.polls = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=prefix)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{prefix}/rpc", qos=1)
        self.client.loop_start()

    def clock(self):
        return time.time() + SKEW_S

    def announce(self):
        frame = {
            "src": self.prefix,
            "dst": f"{self.prefix}/events",
            "method": "NotifyStatus",
            "params": {"ts": round(self.clock(), 2), "pm1:0": {"apower": self.watts}},
        }
        self.client.publish(f"{self.prefix}/events/rpc", json.dumps(frame), qos=1)

    def _on_message(self, client, userdata, message):
        request = json.loads(message.payload)
        self.polls.append((time.time(), request))
        if not self.answering.is_set():
            return
        reply = {
            "id": request["id"],
            "src": self.prefix,
            "dst": request["src"],
            "result": {"id": 0, "apower": self.watts, "voltage": 230.1},
        }
        client.publish(f"{request['src']}/rpc", json.dumps(reply), qos=1)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.timeout(180)
def test_polls_keep_a_quiet_machine_in_session_until_it_stops_answering(
    broker, servers
):
    server = servers()
    rpc = server.rpc()
    prefix = "shellypmminig3-0000000000d1"
    timing = {
        "poll_interval_s": 2,
        "message_timeout_s": 6,
        "start_debounce_s": 1,
        "log_raw": True,
    }
    _conn, (dev_id,) = h.setup_workshop(rpc, broker.port, [("Printer", prefix, timing)])
    h.wait_for(
        lambda: (
            rpc.search_read("mqtt.connection", [], ["state"])[0]["state"] == "connected"
        ),
        20,
        "connected",
    )
    meter = QuietMeter(broker.port, prefix, 82.5)
    try:
        meter.announce()
        started = meter.clock()
        # Four timeouts long the meter says nothing by itself.
        time.sleep(24)
        (session,) = rpc.search_read(
            "mqtt.session",
            [("device_id", "=", dev_id)],
            ["state", "start_ts", "standby_duration_s"],
        )
        assert session["state"] == "running"
        assert session["start_ts"] == pytest.approx(started, abs=0.5)
        assert len(meter.polls) >= 8, "polled every 2 s"
        request = meter.polls[0][1]
        assert request["method"] == "PM1.GetStatus"
        assert request["params"] == {"id": 0}
        # The replies landed on the meter's clock (minutes ahead), not ours.
        (device,) = rpc.search_read(
            "mqtt.device", [("id", "=", dev_id)], ["detector_snapshot"]
        )
        assert device["detector_snapshot"]["last_ts"] > started + 10
        replies = rpc.search_read(
            "mqtt.message",
            [("device_id", "=", dev_id), ("topic", "like", "%/rpc")],
            ["device_ts", "received_at"],
        )
        assert len(replies) >= 8
        assert all(abs(r["device_ts"] - (time.time() + SKEW_S)) < 60 for r in replies)

        meter.answering.clear()
        last_answer = max(r["device_ts"] for r in replies)
        (closed,) = h.wait_for(
            lambda: rpc.search_read(
                "mqtt.session",
                [("device_id", "=", dev_id), ("state", "=", "closed")],
                ["end_ts", "end_reason", "standby_duration_s", "start_ts"],
            ),
            20,
            "the session to time out",
        )
        assert closed["end_reason"] == "timeout"
        assert closed["end_ts"] == pytest.approx(last_answer, abs=2.5)
        assert closed["standby_duration_s"] == pytest.approx(
            closed["end_ts"] - closed["start_ts"]
        )
    finally:
        meter.close()
