"""The session hook through the real runner: the example addon in
tests/addons/owm_session_hook_example (installed in every test database)
overrides ``mqtt.session._on_sessions_closed`` and keeps a row per closed
session; a real Odoo server's runner, fed by a real broker, closes sessions,
and each is seen exactly once, with origin "runner"."""

import time

import owm_harness as h
import pytest

PREFIX = "shellypmminig3-0000000000e7"


@pytest.mark.timeout(180)
def test_an_addon_hears_each_session_the_runner_closes_once(broker, servers):
    server = servers()
    rpc = server.rpc()
    _conn, (dev_id,) = h.setup_workshop(
        rpc, broker.port, [("Lathe", PREFIX, {"poll_interval_s": 0})]
    )
    h.wait_for(
        lambda: (
            rpc.search_read("mqtt.connection", [], ["state"])[0]["state"] == "connected"
        ),
        20,
        "connected",
    )
    publisher = h.ShellyPublisher(broker.port)
    t0 = round(time.time()) - 600.0
    # Two sessions: 20 s working, then 20 s off (past the 15 s stop delay).
    powers = ([0.0] + [500.0] * 4 + [0.0] * 4) * 2 + [0.0] * 2
    for k, watts in enumerate(powers):
        publisher.notify_status(PREFIX, t0 + 5 * k, watts)
    sessions = h.wait_closed_sessions(rpc, dev_id, 2)
    seen = h.wait_for(
        lambda: rpc.search_read(
            "owm.session.hook.example",
            [("session_id.device_id", "=", dev_id)],
            ["session_id", "origin", "working_hours"],
        ),
        20,
        "the example addon's rows",
    )
    assert sorted(row["session_id"][0] for row in seen) == sorted(
        s["id"] for s in sessions
    )
    assert {row["origin"] for row in seen} == {"runner"}
    for row in seen:
        assert row["working_hours"] == pytest.approx(20.0 / 3600.0, abs=1e-6)
    # A person's stop is heard too, with its own origin.
    rpc("mqtt.device", "action_start_session", [dev_id])
    rpc("mqtt.device", "action_stop_session", [dev_id])
    manual = rpc.search_read(
        "owm.session.hook.example",
        [("session_id.device_id", "=", dev_id), ("origin", "=", "manual")],
        ["session_id"],
    )
    assert len(manual) == 1
    assert not rpc.search_read("mqtt.session.hook.failure", [], ["error"])
