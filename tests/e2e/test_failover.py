"""Several runners on one database, and runners that die: each broker
connection is consumed by exactly one runner at any moment, a standby takes
over within 10 s, and no reading or session is lost or written twice."""

import os
import signal
import time

import owm_harness as h
import pytest

PREFIXES = [f"shellypmminig3-00000000f00{i}" for i in range(3)]
DEVICE_VALS = {"poll_interval_s": 0, "log_raw": True}


def owner(rpc):
    row = rpc.search_read(
        "mqtt.connection", [], ["owner_node", "state", "runner_alive"]
    )[0]
    return (
        row["owner_node"]
        if row["state"] == "connected" and row["runner_alive"]
        else None
    )


def check_exactly_once(rpc, stream, device_ids, scenario, **extra):
    """Every frame sent is in the raw log exactly once; sessions are exact."""
    for prefix, dev_id in zip(PREFIXES, device_ids, strict=True):
        sent = stream.sent[prefix]

        def all_logged(dev_id=dev_id, expected=len(sent)):  # noqa: B008
            count = rpc("mqtt.message", "search_count", [("device_id", "=", dev_id)])
            return count >= expected

        h.wait_for(all_logged, 60, f"{len(sent)} raw rows of device {dev_id}")
        rows = rpc.search_read(
            "mqtt.message", [("device_id", "=", dev_id)], ["device_ts"]
        )
        times = sorted(r["device_ts"] for r in rows)
        assert times == sorted(sent), "each frame recorded exactly once"
        # A last cycle cut short by the stop times out or closes by the
        # runner's clock: sessions_match allows for it.
        sessions = rpc.search_read(
            "mqtt.session",
            [
                ("device_id", "=", dev_id),
                ("state", "=", "closed"),
                ("end_reason", "=", "power_drop"),
            ],
            ["start_ts", "end_ts", "working_duration_s"],
            order="start_ts",
        )
        got = [(s["start_ts"], s["end_ts"]) for s in sessions]
        assert stream.sessions_match(got), f"sessions of {prefix}: {got}"
        assert all(s["working_duration_s"] == pytest.approx(20.0) for s in sessions)
    # Counted once every row arrived (the loop above waited for them).
    h.figures(
        scenario,
        sent=sum(len(stream.sent[p]) for p in PREFIXES),
        logged=rpc("mqtt.message", "search_count", [("device_id", "in", device_ids)]),
        **extra,
    )


@pytest.mark.timeout(400)
@pytest.mark.parametrize("first_workers", [0, 2], ids=["threaded", "prefork"])
def test_standby_takes_over_when_the_owner_is_killed(
    broker, servers, publisher, first_workers
):
    first = servers(workers=first_workers, node="node-a")
    second = servers(node="node-b")
    rpc = second.rpc()
    _conn, device_ids = h.setup_workshop(
        rpc, broker.port, [(p, p, DEVICE_VALS) for p in PREFIXES]
    )
    h.wait_for(lambda: owner(rpc), 20, "an owner")
    stream = h.MeterStream(publisher, PREFIXES, rate_hz=20).start()
    time.sleep(4)
    owner_node = owner(rpc)
    victim, standby = (first, second) if owner_node == "node-a" else (second, first)
    # Only one runner consumes: the other logged no consumption at all.
    assert standby.runner_pids() and "consumes connection" not in standby.log()
    killed_at = time.monotonic()
    victim.kill9()
    rpc = standby.rpc()
    h.wait_for(lambda: owner(rpc) == standby.node, 15, "the standby to take over")
    takeover_s = time.monotonic() - killed_at
    assert takeover_s < 10, f"takeover took {takeover_s:.1f} s"
    time.sleep(4)
    stream.stop()
    publisher.flush()
    time.sleep(16 / stream.rate_hz + 1)
    check_exactly_once(
        rpc,
        stream,
        device_ids,
        f"owner killed ({'prefork' if first_workers else 'threaded'} server)",
        takeover_s=round(takeover_s, 1),
    )
    assert rpc("mqtt.session", "search_count", [("state", "=", "running")]) <= len(
        PREFIXES
    )


@pytest.mark.timeout(300)
def test_prefork_respawns_a_killed_runner_worker(broker, servers, publisher):
    server = servers(workers=2)
    rpc = server.rpc()
    _conn, device_ids = h.setup_workshop(
        rpc, broker.port, [(p, p, DEVICE_VALS) for p in PREFIXES]
    )
    h.wait_for(lambda: owner(rpc), 20, "an owner")
    stream = h.MeterStream(publisher, PREFIXES, rate_hz=20).start()
    time.sleep(3)
    (runner_pid,) = server.runner_pids()
    killed_at = time.monotonic()
    os.kill(runner_pid, signal.SIGKILL)
    h.wait_for(lambda: len(server.runner_pids()) == 2, 20, "a new runner worker")
    new_pid = server.runner_pids()[1]
    assert new_pid != runner_pid
    h.wait_for(lambda: owner(rpc) == server.node, 15, "the new worker to consume")
    back_s = time.monotonic() - killed_at
    time.sleep(3)
    stream.stop()
    publisher.flush()
    time.sleep(2)
    check_exactly_once(
        rpc,
        stream,
        device_ids,
        "runner worker killed",
        consuming_again_s=round(back_s, 1),
    )
