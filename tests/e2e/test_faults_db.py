"""Database faults while readings flow: PostgreSQL connections of the runner
terminated under it, and a user editing a device the runner writes at the
same time.  Three meters stream 20 frames/s each (on/off cycles with known
sessions); every frame must be in the raw log exactly once and every
session exact, whatever happened to the database connections."""

import threading
import time

import owm_harness as h
import pytest

PREFIXES = [f"shellypmminig3-00000000d00{i}" for i in range(3)]
DEVICE_VALS = {"poll_interval_s": 0, "log_raw": True}


def start(servers, broker):
    server = servers()
    rpc = server.rpc()
    conn_id, ids = h.setup_workshop(
        rpc, broker.port, [(p, p, DEVICE_VALS) for p in PREFIXES]
    )
    h.wait_state(rpc, conn_id, "connected", 20)
    return server, rpc, conn_id, ids


def finish(name, rpc, stream, publisher, device_ids, **extra):
    """Stop the stream, wait for everything, check exactly once and report."""
    stream.stop()
    publisher.flush()
    got = h.stream_figures(rpc, stream, device_ids)
    h.figures(name, **got, **extra)
    assert got["recorded"] == got["sent"]
    assert (got["lost"], got["doubled"], got["unexpected"]) == (0, 0, 0)
    assert got["redelivered"] == 0, "a committed frame was written again"
    assert got["sessions_exact"], "sessions differ from the frames sent"
    return got


@pytest.mark.timeout(240)
def test_lock_connection_terminated(broker, servers, publisher):
    """pg_terminate_backend on the runner's lock connection: the advisory
    locks are gone, so the runner lets go of every broker connection, takes
    its locks again and goes on -- nothing lost, nothing written twice."""
    server, rpc, conn_id, ids = start(servers, broker)
    client_id = h.connection_row(rpc, conn_id, ["client_id"])["client_id"]
    stream = h.MeterStream(publisher, PREFIXES, rate_hz=20).start()
    kills = 0
    for _ in range(2):
        time.sleep(3)
        mark = len(server.log())
        kills += h.terminate_backends(server.dbname, f"owm-runner {server.node}")
        h.wait_for(
            lambda mark=mark: "consumes connection" in server.log()[mark:],
            20,
            "the runner to take its connection again",
        )
        h.wait_state(rpc, conn_id, "connected", 15)
        assert "lost its database lock connection" in server.log()[mark:]
    time.sleep(3)
    got = finish("pg_terminate_backend lock connection x2", rpc, stream, publisher, ids)
    assert kills == 2
    # It let go of the broker each time (a new network session each time).
    connects = broker.log().count(f" as {client_id} ")
    assert connects == 3, f"{connects} broker sessions of the runner"
    assert got["sessions_expected"] > 0


@pytest.mark.timeout(240)
def test_flush_connections_terminated(broker, servers, publisher):
    """pg_terminate_backend on every pooled connection of the server, again
    and again while frames flow, until a flush lost its connection mid-write:
    the runner says so in one line (no traceback), writes the batch again on
    a fresh connection, exactly once, and the form shows no stale error."""
    server, rpc, conn_id, ids = start(servers, broker)
    stream = h.MeterStream(publisher, PREFIXES, rate_hz=20).start()
    time.sleep(2)
    pooled = f"odoo-{server.proc.pid}"
    lost = "database connection lost"
    kills = rounds = 0
    deadline = time.monotonic() + 60
    while rounds < 10 or lost not in server.log():
        assert time.monotonic() < deadline, "no flush was ever hit"
        kills += h.terminate_backends(server.dbname, pooled)
        rounds += 1
        time.sleep(0.05)
    time.sleep(2)
    finish(
        "pg_terminate_backend pooled connections",
        rpc,
        stream,
        publisher,
        ids,
        backends_terminated=kills,
        flushes_hit=server.log().count(lost),
    )
    row = h.wait_for(
        lambda: (lambda r: r if not r["last_error"] else None)(
            h.connection_row(rpc, conn_id)
        ),
        10,
        "the form to drop the database error",
    )
    assert row["state"] == "connected"
    assert "Traceback" not in server.log()


class Editor(threading.Thread):
    """A manager editing one machine over JSON-RPC in a loop."""

    def __init__(self, rpc, device_id):
        super().__init__(daemon=True)
        self.rpc = rpc
        self.device_id = device_id
        self.stop = threading.Event()
        self.written = None
        self.writes = 0
        self.refused = 0

    def run(self):
        i = 0
        while not self.stop.is_set():
            i += 1
            vals = {
                "name": f"Saw, edit {i}",
                "standby_threshold_w": 20.0 + i % 2,
                "working_threshold_w": 100.0 + i % 3,
            }
            try:
                self.rpc("mqtt.device", "write", [self.device_id], vals)
            except h.RpcError:
                self.refused += 1  # Odoo's own retries ran out: the user retries
                continue
            self.written = vals
            self.writes += 1


@pytest.mark.timeout(240)
def test_user_edits_the_device_while_readings_flow(broker, servers, publisher):
    """Serialization conflicts: the runner's flush and a user's edit write the
    same mqtt_device row.  The user's edit is kept, the batch is retried
    (the log says so), and no reading is lost or written twice."""
    server, rpc, conn_id, ids = start(servers, broker)
    stream = h.MeterStream(publisher, PREFIXES, rate_hz=20).start()
    editor = Editor(server.rpc(), ids[0])
    editor.start()
    try:
        h.wait_for(
            lambda: "Flush conflict (SerializationFailure); retrying" in server.log(),
            90,
            "a flush to meet the user's edit",
            interval=0.5,
        )
        time.sleep(2)
    finally:
        editor.stop.set()
        editor.join(30)
    retries = server.log().count("Flush conflict (")
    finish(
        "serialization conflict (user edits)",
        rpc,
        stream,
        publisher,
        ids,
        user_writes=editor.writes,
        user_writes_refused=editor.refused,
        runner_retries=retries,
    )
    device = rpc.search_read(
        "mqtt.device",
        [("id", "=", ids[0])],
        ["name", "standby_threshold_w", "working_threshold_w"],
    )[0]
    assert {k: device[k] for k in editor.written} == editor.written
    assert editor.writes > 10
