"""Reconnect backoff: while the broker is away the runner waits longer and
longer between attempts (reconnect_min_s x factor .. reconnect_max_s, as
configured on the connection), tells so on the form, and once the broker is
back it is connected again within the maximum delay, having lost nothing."""

import re
import time

import owm_harness as h
import pytest

PREFIXES = [f"shellypmminig3-00000000a00{i}" for i in range(2)]
DEVICE_VALS = {"poll_interval_s": 0, "log_raw": True}
MIN_S, MAX_S, FACTOR = 0.5, 3.0, 2.0
RETRY_RE = re.compile(r"MQTT Test broker: (.*); retrying in ([0-9.]+) s")


@pytest.mark.timeout(240)
def test_reconnect_backoff_grows_to_its_maximum(broker, servers, publisher):
    server = servers()
    rpc = server.rpc()
    conn_id, ids = h.setup_workshop(
        rpc,
        broker.port,
        [(p, p, DEVICE_VALS) for p in PREFIXES],
        reconnect_min_s=MIN_S,
        reconnect_max_s=MAX_S,
        reconnect_factor=FACTOR,
    )
    h.wait_state(rpc, conn_id, "connected", 20)
    stream = h.MeterStream(publisher, PREFIXES, rate_hz=10).start()
    time.sleep(2)
    mark = len(server.log())
    broker.stop()
    time.sleep(12)  # 0.5 + 1 + 2 + 3 s: long enough to reach the maximum
    row = h.connection_row(rpc, conn_id)
    delays = [float(m.group(2)) for m in RETRY_RE.finditer(server.log()[mark:])]
    broker.start()
    up = time.monotonic()
    h.wait_for(
        lambda: (
            h.db_scalar(
                server.dbname,
                "SELECT state FROM mqtt_connection WHERE id = %s",
                (conn_id,),
            )
            == "connected"
        ),
        MAX_S + 5,
        "the runner to reconnect",
        interval=0.05,
    )
    reconnect_s = time.monotonic() - up
    stream.stop()
    publisher.flush()
    got = h.stream_figures(rpc, stream, ids)
    h.figures(
        "broker down 12 s, backoff 0.5 s x2 .. 3 s",
        retry_delays_s=delays,
        reconnect_after_s=round(reconnect_s, 2),
        **got,
    )
    # The delay grew from the minimum by the factor and stopped at the maximum.
    expected = [min(MAX_S, MIN_S * FACTOR**i) for i in range(len(delays))]
    assert delays == expected, delays
    assert len(delays) >= 5 and delays[-1] == MAX_S
    # The form said so in plain words while it lasted.
    assert row["state"] == "error"
    assert f"Broker 127.0.0.1:{broker.port} refused the connection" in row["last_error"]
    assert "retrying in 3 s" in row["last_error"]
    # Back within the maximum delay (plus the connect and one flush).
    assert reconnect_s <= MAX_S + 1.0
    assert (got["lost"], got["doubled"], got["unexpected"]) == (0, 0, 0)
    # A PUBACK the outage swallowed (the meter's to the broker, or the
    # runner's written into the closing socket) brings that frame once more:
    # QoS 1 is at least once.  Such a copy is logged, never applied twice.
    assert got["unrecognised"] == 0 and got["sessions_exact"]
