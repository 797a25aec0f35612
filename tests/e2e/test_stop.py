"""A server stopped while readings flow: a clean stop, nothing acknowledged lost.

The runner acknowledges a QoS 1 reading to the broker only after the
transaction that recorded it committed.  So after a stop, every frame a meter
sent is either committed (a ``reading`` row in the raw log) or still held by
the broker for the runner's persistent session; a frame in neither was
acknowledged without being committed.  The stop itself logs no error and no
traceback: the runner's last batch is written before Odoo closes its
connection pools (the runner is stopped from ``CommonServer.on_stop``).
"""

import json

import owm_harness as h
import pytest

PREFIXES = [f"shellypmminig3-0000000057{n:02d}" for n in range(1, 4)]
DEVICE_VALS = {"poll_interval_s": 0, "log_raw": True}


def held_by_broker(broker, client_id):
    """{topic prefix: device times} of the frames the broker still holds."""
    held = {}
    for topic, payload in h.take_over_session(broker.port, client_id):
        if topic.endswith("/events/rpc"):
            ts = json.loads(payload)["params"]["ts"]
            held.setdefault(topic[: -len("/events/rpc")], set()).add(ts)
    return held


@pytest.mark.timeout(240)
@pytest.mark.parametrize("workers", [0, 2], ids=["threaded", "prefork"])
def test_stop_while_readings_flow(broker, servers, publisher, workers):
    server = servers(workers=workers)
    rpc = server.rpc()
    devices = [(f"Meter {n}", p, DEVICE_VALS) for n, p in enumerate(PREFIXES, 1)]
    conn_id, dev_ids = h.setup_workshop(rpc, broker.port, devices)
    h.wait_state(rpc, conn_id, "connected", 20)
    client_id = h.connection_row(rpc, conn_id, ["client_id"])["client_id"]
    stream = h.MeterStream(publisher, PREFIXES, rate_hz=25).start()
    # Readings are committed while the stream runs: stop in the middle of it.
    h.wait_for(
        lambda: (
            h.db_scalar(
                server.dbname,
                "SELECT count(*) FROM mqtt_message WHERE status='reading'",
            )
            >= 150
        ),
        30,
        "150 committed readings",
    )
    server.stop()
    stream.stop()
    publisher.flush()
    log = server.log()
    held = held_by_broker(broker, client_id)
    rows = {
        prefix: h.db_scalar(
            server.dbname,
            "SELECT coalesce(json_agg(device_ts), '[]') FROM mqtt_message "
            "WHERE device_id = %s AND status = 'reading'",
            (dev_id,),
        )
        for prefix, dev_id in zip(PREFIXES, dev_ids, strict=True)
    }
    figures = {}
    for prefix in PREFIXES:
        sent = set(stream.sent[prefix])
        committed = rows[prefix]
        kept = held.get(prefix, set())
        figures[prefix] = {
            "sent": len(sent),
            "committed": len(committed),
            "held_by_broker": len(kept),
            "doubled": len(committed) - len(set(committed)),
            "acked_not_committed": len(sent - set(committed) - kept),
        }
    h.figures(f"stop while readings flow ({server.workers} workers)", **figures)
    for prefix, got in figures.items():
        assert got["acked_not_committed"] == 0, (prefix, got)
        assert got["doubled"] == 0, (prefix, got)
        assert got["committed"] > 0, (prefix, got)
    assert "Traceback" not in log, log[-4000:]
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert not errors, errors
    assert "MQTT runner" in log and "stopped" in log
