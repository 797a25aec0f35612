"""The whole path: Shelly frames at a real broker -> a real odoo server with the
runner server-wide -> sessions and live fields, checked over JSON-RPC."""

import time

import owm_harness as h
import pytest

SESSION_FIELDS = [
    "start_ts",
    "end_ts",
    "state",
    "standby_duration_s",
    "working_duration_s",
    "energy_wh",
    "end_reason",
    "origin",
]


def device_time():
    """A synced meter clock a little in the past, so frames are plausible."""
    return round(time.time()) - 600.0


def sessions(rpc, device_id, **kw):
    return rpc.search_read(
        "mqtt.session",
        [("device_id", "=", device_id)],
        SESSION_FIELDS,
        order="start_ts",
        **kw,
    )


def wait_sessions(rpc, device_id, count, closed=True, timeout=30):
    def check():
        rows = sessions(rpc, device_id)
        if len(rows) == count and (
            not closed or all(r["state"] == "closed" for r in rows)
        ):
            return rows
        return None

    return h.wait_for(check, timeout, f"{count} session(s) of device {device_id}")


def play_standard_session(pub, prefix, t0):
    """Off, 10 s working, 10 s standby, 10 s working, drop, stays off."""
    pub.online(prefix, True)
    for dt, watts in [
        (0, 0.0),
        (10, 500.0),
        (20, 50.0),
        (30, 600.0),
        (40, 1.0),
        (60, 1.2),
    ]:
        pub.notify_status(prefix, t0 + dt, watts)
    pub.flush()


def assert_standard_session(row, t0):
    assert row["start_ts"] == t0 + 10
    assert row["end_ts"] == t0 + 40
    assert row["state"] == "closed"
    assert row["end_reason"] == "power_drop"
    assert row["working_duration_s"] == pytest.approx(20.0)
    assert row["standby_duration_s"] == pytest.approx(10.0)
    assert row["energy_wh"] == pytest.approx((500 * 10 + 50 * 10 + 600 * 10) / 3600)


@pytest.mark.parametrize("workers", [0, 2], ids=["threaded", "prefork"])
def test_frames_become_sessions_and_live_fields(broker, servers, publisher, workers):
    server = servers(workers=workers)
    rpc = server.rpc()
    prefix = "shellypmminig3-0000000000a1"
    conn_id, (dev_id,) = h.setup_workshop(
        rpc, broker.port, [("Laser", prefix, {"poll_interval_s": 0, "log_raw": True})]
    )
    h.wait_for(
        lambda: (
            rpc.search_read("mqtt.connection", [("id", "=", conn_id)], ["state"])[0][
                "state"
            ]
            == "connected"
        ),
        20,
        "the connection to be connected",
    )
    (runner_pid,) = server.runner_pids()
    if workers:
        # A dedicated worker: not the master, not an HTTP worker.
        assert runner_pid != server.proc.pid
        assert runner_pid in server.log_pids("Worker WorkerMqttRunner")
        assert runner_pid not in server.log_pids("Worker WorkerHTTP")
    else:
        assert runner_pid == server.proc.pid
    t0 = device_time()
    play_standard_session(publisher, prefix, t0)
    (row,) = wait_sessions(rpc, dev_id, 1)
    assert_standard_session(row, t0)
    dev = rpc.search_read(
        "mqtt.device",
        [("id", "=", dev_id)],
        [
            "current_state",
            "current_power_w",
            "online",
            "shelly_id",
            "running_session_id",
        ],
    )[0]
    assert dev["current_state"] == "idle"
    assert dev["current_power_w"] == 1.2
    assert dev["online"] is True
    assert dev["shelly_id"] == prefix
    assert dev["running_session_id"] is False
    conn = rpc.search_read(
        "mqtt.connection",
        [("id", "=", conn_id)],
        ["owner_node", "stat_received", "stat_readings", "heartbeat", "runner_alive"],
    )[0]
    assert conn["owner_node"] == server.node
    assert conn["runner_alive"] is True
    h.wait_for(
        lambda: rpc("mqtt.message", "search_count", [("device_id", "=", dev_id)]) == 7,
        10,
        "7 raw log rows",
    )


def test_silence_times_out_and_last_will_ends_offline(broker, servers, publisher):
    server = servers()
    rpc = server.rpc()
    quiet, lost = "shellypmminig3-0000000000b1", "shellypmminig3-0000000000b2"
    fast = {"poll_interval_s": 0, "message_timeout_s": 4, "start_debounce_s": 1}
    _conn, (quiet_id, lost_id) = h.setup_workshop(
        rpc, broker.port, [("Quiet", quiet, fast), ("Lost", lost, fast)]
    )
    h.wait_for(
        lambda: (
            rpc.search_read("mqtt.connection", [], ["state"])[0]["state"] == "connected"
        ),
        20,
        "connected",
    )
    t0 = device_time()
    publisher.notify_status(quiet, t0, 300.0)
    publisher.notify_status(quiet, t0 + 2, 310.0)
    publisher.notify_status(lost, t0, 300.0)
    publisher.notify_status(lost, t0 + 2, 310.0)
    publisher.online(lost, False)
    publisher.flush()
    (row,) = wait_sessions(rpc, lost_id, 1, timeout=15)
    assert row["end_reason"] == "offline"
    assert row["start_ts"] == t0
    (row,) = wait_sessions(rpc, quiet_id, 1, timeout=20)
    assert row["end_reason"] == "timeout"
    assert (row["start_ts"], row["end_ts"]) == (t0, t0 + 2)
    assert row["working_duration_s"] == pytest.approx(2.0)


def test_configuration_changes_apply_without_restart(broker, servers, publisher):
    server = servers()
    rpc = server.rpc()
    conn_id, _ids = h.setup_workshop(rpc, broker.port, [])
    h.wait_for(
        lambda: (
            rpc.search_read("mqtt.connection", [], ["state"])[0]["state"] == "connected"
        ),
        20,
        "connected",
    )
    prefix = "shellypmminig3-0000000000c1"
    started = time.monotonic()
    dev_id = rpc(
        "mqtt.device",
        "create",
        {
            "name": "New saw",
            "connection_id": conn_id,
            "topic_prefix": prefix,
            "poll_interval_s": 0,
        },
    )
    t0 = device_time()

    def seen():
        publisher.notify_status(prefix, t0 + (time.monotonic() - started), 5.0)
        return rpc.search_read("mqtt.device", [("id", "=", dev_id)], ["online"])[0][
            "online"
        ]

    # Read without a restart: the runner is woken by the change (a bounded
    # wait, not a timing check).
    h.wait_for(seen, 10, "the new device to be read", interval=0.3)
    # A threshold change applies to the running detector at once.
    rpc(
        "mqtt.device",
        "write",
        [dev_id],
        {"standby_threshold_w": 2.0, "start_debounce_s": 0},
    )
    time.sleep(2.5)
    t1 = t0 + 100
    for dt, watts in [(0, 3.0), (5, 3.5), (10, 0.5), (30, 0.5)]:
        publisher.notify_status(prefix, t1 + dt, watts)
    publisher.flush()
    (row,) = wait_sessions(rpc, dev_id, 1)
    assert (row["start_ts"], row["end_ts"]) == (t1, t1 + 10)
    # The service API: its status as a plain dict; a restart connects anew.
    status = rpc("mqtt.connection", "status", [conn_id])[str(conn_id)]
    assert status["state"] == "connected"
    assert status["runner_alive"] is True
    assert status["node"] and status["since"] and status["queue_depth"] == 0
    assert "Read by the runner on server" in status["sentence"]
    broker_clients = broker.connects()
    rpc("mqtt.connection", "restart", [conn_id])
    h.wait_for(
        lambda: (
            broker.connects() > broker_clients
            and rpc("mqtt.connection", "status", [conn_id])[str(conn_id)]["state"]
            == "connected"
        ),
        15,
        "the runner to connect anew",
    )
    again = rpc("mqtt.connection", "status", [conn_id])[str(conn_id)]
    assert again["since"] >= status["since"]
    # Stop: the runner lets the broker go and says so.
    rpc("mqtt.connection", "stop", [conn_id])
    h.wait_for(
        lambda: (
            rpc.search_read("mqtt.connection", [], ["state", "owner_node"])[0]
            == {"id": conn_id, "state": "stopped", "owner_node": False}
        ),
        10,
        "the connection to be stopped",
    )
