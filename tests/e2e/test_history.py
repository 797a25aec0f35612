"""The power history through the real runner: replayed with the machine's own
settings, it gives back exactly the sessions the runner stored.

A meter plays a workshop machine on a real-time clock for about two minutes:
sessions of work and standby, frames sent twice, a Last Will (offline) in a
session, polls answered with the current power; meanwhile the broker is down
for a few seconds and Odoo is restarted in the middle of a session.  Then
the recompute wizard, with unchanged settings, is asked over JSON-RPC what
would change: nothing, every stored session comes back.
"""

import json
import threading
import time

import owm_harness as h
import paho.mqtt.client as mqtt
import pytest

PREFIX = "shellypmminig3-0000000000f1"
# (seconds, watts): sessions of ~20 s, a standby stretch, gaps over the stop delay.
CYCLE = [(2, 0.0), (8, 650.0), (3, 60.0), (3, 700.0), (17, 0.0)]
DEVICE_VALS = {"poll_interval_s": 3.0, "max_msg_rate": 200}


class LiveMeter:
    """A meter that reports changes at 1 Hz, answers polls, repeats itself."""

    def __init__(self, port, t0):
        self.t0 = t0
        self.powers = [w for n, w in CYCLE for _ in range(n)]
        self.watts = 0.0
        self.sent = 0
        self.polls = 0
        self.stop = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"{PREFIX}-meter",
            clean_session=False,
        )
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.2, 1.0)
        self.client.on_message = self._on_poll
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{PREFIX}/rpc", qos=1)
        self.client.loop_start()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _frame(self, ts, watts):
        return json.dumps(
            {
                "src": PREFIX,
                "dst": f"{PREFIX}/events",
                "method": "NotifyStatus",
                "params": {"ts": round(ts, 2), "pm1:0": {"apower": watts}},
            }
        )

    def _run(self):
        started = time.monotonic()
        k = 0
        while not self.stop.is_set():
            watts = self.powers[k % len(self.powers)]
            ts = self.t0 + k
            if watts != self.watts or k % 7 == 0:  # changes, and now and then
                self.watts = watts
                payload = self._frame(ts, watts)
                self.client.publish(f"{PREFIX}/events/rpc", payload, qos=1)
                if k % 11 == 0:  # the same frame twice
                    self.client.publish(f"{PREFIX}/events/rpc", payload, qos=1)
                self.sent += 1
            if k == 48:  # the meter's Last Will in a session, then back
                self.client.publish(f"{PREFIX}/online", "false", qos=1)
                self.client.publish(f"{PREFIX}/online", "true", qos=1)
            k += 1
            self.stop.wait(max(0.0, started + k - time.monotonic()))

    def _on_poll(self, client, userdata, message):
        request = json.loads(message.payload)
        self.polls += 1
        reply = {
            "id": request["id"],
            "src": PREFIX,
            "dst": request["src"],
            "result": {"id": 0, "apower": self.watts},
        }
        client.publish(f"{request['src']}/rpc", json.dumps(reply), qos=1)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.timeout(300)
def test_replaying_the_stored_history_gives_back_the_stored_sessions(broker, servers):
    server = servers()
    rpc = server.rpc()
    conn_id, (dev_id,) = h.setup_workshop(
        rpc, broker.port, [("Table saw", PREFIX, DEVICE_VALS)]
    )
    h.wait_state(rpc, conn_id, "connected", 20)
    t0 = round(time.time()) - 1.0
    meter = LiveMeter(broker.port, t0)
    meter.thread.start()
    try:
        time.sleep(30)
        broker.stop()  # persistence on: nothing is lost
        time.sleep(6)
        broker.start()
        h.wait_state(rpc, conn_id, "connected", 20)
        h.wait_for(
            lambda: (
                h.session_rows(rpc, dev_id, ["state"])[-1:]
                and h.session_rows(rpc, dev_id, ["state"])[-1]["state"] == "running"
            ),
            40,
            "a session to be running",
        )
        server.stop()  # Odoo restarted in the middle of a session
        server = servers()
        rpc = server.rpc()
        h.wait_state(rpc, conn_id, "connected", 30)
        time.sleep(50)
    finally:
        meter.close()
    # Let the last session end by itself (power drop or silence).
    rows = h.wait_for(
        lambda: (lambda r: r if r and all(s["state"] == "closed" for s in r) else None)(
            h.session_rows(rpc, dev_id)
        ),
        60,
        "every session closed",
    )
    reasons = {r["end_reason"] for r in rows}
    params = rpc.search_read(
        "mqtt.device",
        [("id", "=", dev_id)],
        [
            "standby_threshold_w",
            "working_threshold_w",
            "start_debounce_s",
            "stop_debounce_s",
            "message_timeout_s",
        ],
    )[0]
    del params["id"]
    wizard = rpc(
        "mqtt.session.recompute",
        "create",
        dict(
            params,
            device_ids=[[6, 0, [dev_id]]],
            date_from=_odoo_time(t0 - 60),
            date_to=_odoo_time(time.time() + 60),
        ),
    )
    started = time.monotonic()
    rpc("mqtt.session.recompute", "action_preview", [wizard])
    preview_s = time.monotonic() - started
    (machine,) = rpc.search_read(
        "mqtt.session.recompute.machine",
        [("wizard_id", "=", wizard)],
        ["kept", "changed", "appearing", "vanishing", "left_alone"],
    )
    h.figures(
        "history replay through the real runner",
        sessions=len(rows),
        end_reasons=sorted(reasons),
        frames_sent=meter.sent,
        polls_answered=meter.polls,
        preview_s=round(preview_s, 2),
        **{k: machine[k] for k in ("kept", "changed", "appearing", "vanishing")},
    )
    assert len(rows) >= 3 and "offline" in reasons and "power_drop" in reasons
    assert meter.polls > 0
    assert (machine["changed"], machine["appearing"], machine["vanishing"]) == (0, 0, 0)
    assert machine["kept"] == len(rows)
    assert machine["left_alone"] == 0


def _odoo_time(ts):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
