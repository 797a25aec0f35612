"""Restarts of the broker and of Odoo in the middle of a session.

A meter publishes on a real-time clock (one frame per second of device time,
sent once per second), so an outage of N seconds is N seconds of the meter's
life too.  The test publisher keeps QoS 1 frames it could not deliver and
resends them (a persistent MQTT session, as a real client library does).
Every frame is checked in the device's raw log (``log_raw``): one reading row
per frame sent, none lost, none doubled; sessions are checked to the second.
"""

import time
import uuid

import owm_harness as h
import pytest

PREFIX = "shellypmminig3-00000000e001"
QUIET = "shellypmminig3-00000000e002"
BUSY = "shellypmminig3-00000000e003"
DEVICE_VALS = {"poll_interval_s": 0, "log_raw": True}
OFF, STANDBY_W, WORKING_W = 0.0, 50.0, 500.0


def session_powers(working_s):
    """3 s off, ``working_s`` s at 500 W, 5 s at 50 W, 5 s at 500 W, 18 s off.

    The session: start at frame 3, end at the drop (frame 13 + working_s),
    working ``working_s + 5`` s, standby 5 s."""
    return (
        [OFF] * 3
        + [WORKING_W] * working_s
        + [STANDBY_W] * 5
        + [WORKING_W] * 5
        + [OFF] * 18
    )


def assert_exact_session(row, t0, working_s):
    """The session of ``session_powers(working_s)`` sent from device time t0."""
    start, end = t0 + 3, t0 + 13 + working_s
    assert (row["start_ts"], row["end_ts"]) == (start, end)
    assert row["state"] == "closed"
    assert row["end_reason"] == "power_drop", "no false timeout"
    assert row["working_duration_s"] == pytest.approx(working_s + 5.0)
    assert row["standby_duration_s"] == pytest.approx(5.0)
    assert row["total_duration_s"] == pytest.approx(end - start)
    assert row["energy_wh"] == pytest.approx(
        (WORKING_W * (working_s + 5) + STANDBY_W * 5) / 3600
    )


def start_workshop(servers, broker, devices, workers=0):
    server = servers(workers=workers)
    rpc = server.rpc()
    conn_id, ids = h.setup_workshop(rpc, broker.port, devices)
    h.wait_state(rpc, conn_id, "connected", 20)
    return server, rpc, conn_id, ids


def _broker_outage(servers, broker, publisher, outage_s):
    """The broker is down for ``outage_s`` s mid-session (persistence on).

    Laser's session spans the outage; Busy streams 20 frames/s (under its
    cap) through it: its backlog arrives at once after the outage and must
    not be taken for a flood."""
    server, rpc, conn_id, (dev_id, busy_id) = start_workshop(
        servers, broker, [("Laser", PREFIX, DEVICE_VALS), ("Busy", BUSY, DEVICE_VALS)]
    )
    working_s = outage_s + 10  # the session spans the outage
    busy = h.MeterStream(publisher, [BUSY], rate_hz=20).start()
    meter = h.PatternMeter(publisher, PREFIX, session_powers(working_s)).start()
    meter.wait_sent(8)  # the session is open (start debounce 3 s)
    h.wait_for(
        lambda: h.session_rows(rpc, dev_id, ["state"]), 10, "the session to open"
    )
    broker.stop()
    stopped = time.monotonic()
    # The form tells the outage plainly (the heartbeat goes on without a broker).
    row = h.wait_for(
        lambda: (lambda row: row if "refused" in (row["last_error"] or "") else None)(
            h.connection_row(rpc, conn_id)
        ),
        min(10, outage_s + 3),
        "the form to show the outage",
    )
    assert row["state"] in ("error", "connecting")
    assert f"127.0.0.1:{broker.port}" in row["last_error"]
    time.sleep(max(0.0, outage_s - (time.monotonic() - stopped)))
    # Nothing timed out while the broker was away (the meter kept talking).
    assert h.session_rows(rpc, dev_id, ["state"])[0]["state"] == "running"
    broker.start()
    h.wait_state(rpc, conn_id, "connected", 15, "the connection to come back")
    meter.join()
    busy.stop()
    publisher.flush()
    got = h.wait_recorded(rpc, dev_id, meter.sent)
    busy_got = h.stream_figures(rpc, busy, [busy_id])
    (row,) = h.wait_closed_sessions(rpc, dev_id, 1, timeout=20)
    h.figures(
        f"broker outage {outage_s}s (persistence)",
        sessions_expected=1 + busy_got["sessions_expected"],
        sessions_recorded=1 + busy_got["sessions_recorded"],
        laser=got,
        busy=busy_got,
    )
    for figures in (got, busy_got):
        assert (figures["lost"], figures["doubled"], figures["unexpected"]) == (0, 0, 0)
        # A frame the meter sent again after the outage is logged, not applied.
        assert figures["unrecognised"] == 0
    assert busy_got["sessions_exact"]
    assert_exact_session(row, meter.t0, working_s)
    assert h.connection_row(rpc, conn_id)["state"] == "connected"
    return got


@pytest.mark.timeout(180)
def test_broker_down_5s_mid_session(broker, servers, publisher):
    _broker_outage(servers, broker, publisher, 5)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_broker_down_60s_mid_session(broker, servers, publisher):
    _broker_outage(servers, broker, publisher, 60)


@pytest.mark.timeout(180)
def test_broker_restart_without_persistence(workdir, servers):
    """A broker without persistence forgets everything when it restarts: the
    runner's session and subscriptions, the QoS 1 messages it had queued or
    in flight for the runner, and it drops every message published to it
    before the runner subscribed again (no subscriber, no copy).  That is
    what can be lost then, and only that: the runner reconnects, subscribes
    again whatever the broker remembers, and records every frame the broker
    sent on, exactly once.  (With persistence on, nothing is lost at all:
    see test_broker_down_5s_mid_session.)
    """
    broker = h.FaultBroker(
        workdir / f"broker-{uuid.uuid4().hex[:6]}", persistence=False, debug=True
    ).start()
    publisher_id = f"owm-test-pub-{uuid.uuid4().hex[:6]}"
    publisher = h.ShellyPublisher(broker.port, client_id=publisher_id)
    try:
        server, rpc, conn_id, (dev_id,) = start_workshop(
            servers, broker, [("Saw", PREFIX, DEVICE_VALS)]
        )
        client_id = h.connection_row(rpc, conn_id, ["client_id"])["client_id"]
        t0 = round(time.time()) - 600.0
        idle = h.PatternMeter(publisher, PREFIX, [5.0] * 10, t0=t0).start()
        idle.join()
        publisher.flush()
        before = h.wait_recorded(rpc, dev_id, idle.sent)
        broker.stop()
        log_mark = len(broker.log())
        # 10 s more idle (the first ones while the broker is down), then a
        # standard session long after the runner subscribed again.
        meter = h.PatternMeter(
            publisher, PREFIX, [5.0] * 10 + session_powers(10), t0=t0 + 10
        ).start()
        time.sleep(3)
        broker.start()
        h.wait_for(
            lambda: broker.subscribed(client_id, log_mark),
            15,
            "the runner to subscribe again",
        )
        h.wait_state(rpc, conn_id, "connected", 10)
        meter.join()
        publisher.flush()
        # What the restarted broker sent on, frame by frame (its debug log).
        forwarded = broker.forwarded(publisher_id, client_id)
        sent_on = [
            ts for ts, mid in zip(meter.sent, meter.mids, strict=True) if forwarded[mid]
        ]
        dropped = sorted(set(meter.sent) - set(sent_on))
        got = h.wait_recorded(rpc, dev_id, idle.sent + sent_on)
        h.figures(
            "broker restart without persistence",
            broker_dropped=len(dropped),
            **dict(
                got,
                sent=len(idle.sent) + len(meter.sent),
                lost=len(dropped) + got["lost"],
            ),
        )
        assert before["lost"] == 0
        assert (got["lost"], got["doubled"], got["unexpected"]) == (0, 0, 0), (
            "everything the broker sent on is recorded, once"
        )
        # Only frames published around the restart can be dropped by the
        # broker: everything after the runner's new subscription arrived.
        assert all(ts < meter.ts(10) for ts in dropped)
        (row,) = h.wait_closed_sessions(rpc, dev_id, 1)
        assert_exact_session(row, meter.ts(10), 10)
        assert f"{PREFIX}/events/rpc" in broker.subscribed(client_id, log_mark)
    finally:
        publisher.close()
        broker.stop()


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "how,workers",
    [("sigkill", 0), ("sigkill", 2), ("sigterm", 0)],
    ids=["sigkill-threaded", "sigkill-prefork", "sigterm-threaded"],
)
def test_odoo_restart_mid_session(broker, servers, publisher, how, workers):
    """Odoo dies (or stops) while two sessions run and comes back.

    Laser goes on talking while Odoo is down: the broker keeps its frames
    for the runner's persistent session, the open session continues as the
    same record and closes exactly.  Quiet falls silent before Odoo goes
    down: after the restart it is timed out (end = its last reading) --
    silence is measured by the runner's clock from the restart on, never
    across the downtime.  Busy streams 20 frames/s (under its cap of 50/s)
    through it all, so the kill lands between a commit and its
    acknowledgements: the broker's redeliveries of committed frames must be
    recognised, not written again; and its backlog, which the broker
    delivers at once after the restart, is not mistaken for a flood."""
    quiet_vals = dict(DEVICE_VALS, message_timeout_s=15)
    server, rpc, conn_id, (laser_id, quiet_id, busy_id) = start_workshop(
        servers,
        broker,
        [
            ("Laser", PREFIX, DEVICE_VALS),
            ("Quiet", QUIET, quiet_vals),
            ("Busy", BUSY, DEVICE_VALS),
        ],
        workers=workers,
    )
    t0 = round(time.time()) - 600.0
    busy = h.MeterStream(publisher, [BUSY], rate_hz=20).start()
    laser = h.PatternMeter(publisher, PREFIX, session_powers(30), t0=t0).start()
    quiet = h.PatternMeter(publisher, QUIET, [OFF] * 2 + [300.0] * 6, t0=t0).start()
    quiet.join()
    laser.wait_sent(12)

    def running_ids():
        rows = rpc.search_read(
            "mqtt.session", [("state", "=", "running")], ["device_id"]
        )
        return {r["device_id"][0]: r["id"] for r in rows}

    before = h.wait_for(
        lambda: (lambda ids: ids if len(ids) == 2 else None)(running_ids()),
        10,
        "both sessions running",
    )
    if how == "sigkill":
        server.kill9()
    else:
        server.stop()
    down_at = time.monotonic()
    time.sleep(8)  # the meters go on publishing; the broker keeps their frames
    server.start()
    downtime = time.monotonic() - down_at
    rpc = server.rpc()
    h.wait_state(rpc, conn_id, "connected", 20)
    laser.join()
    busy.stop()
    publisher.flush()
    got = h.wait_recorded(rpc, laser_id, laser.sent)
    quiet_got = h.wait_recorded(rpc, quiet_id, quiet.sent)
    busy_got = h.stream_figures(rpc, busy, [busy_id])
    (row,) = h.wait_closed_sessions(rpc, laser_id, 1, timeout=30)
    (quiet_row,) = h.wait_closed_sessions(rpc, quiet_id, 1, timeout=30)
    h.figures(
        f"odoo {how} ({'prefork' if workers else 'threaded'})",
        downtime_s=round(downtime, 1),
        sessions_expected=2 + busy_got["sessions_expected"],
        sessions_recorded=2 + busy_got["sessions_recorded"],
        laser=got,
        quiet=quiet_got,
        busy=busy_got,
    )
    for figures in (got, quiet_got, busy_got):
        # Every frame written once, nothing twice, not even as a duplicate row.
        assert figures["recorded"] == figures["sent"]
        assert (figures["lost"], figures["doubled"]) == (0, 0)
        assert (figures["redelivered"], figures["unexpected"]) == (0, 0)
    assert busy_got["sessions_exact"]
    others = [("device_id", "!=", busy_id)]
    assert rpc("mqtt.session", "search_count", others) == 2
    assert row["id"] == before[laser_id], "the same session record goes on"
    assert_exact_session(row, laser.t0, 30)
    assert quiet_row["id"] == before[quiet_id]
    assert (quiet_row["start_ts"], quiet_row["end_ts"]) == (t0 + 2, t0 + 7)
    assert quiet_row["end_reason"] == "timeout"
    assert quiet_row["working_duration_s"] == pytest.approx(5.0)
    assert quiet_row["standby_duration_s"] == pytest.approx(0.0)
    assert quiet_row["energy_wh"] == pytest.approx(300.0 * 5 / 3600)
