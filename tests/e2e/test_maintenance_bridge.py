"""The maintenance bridge (addons/open_workshop_mqtt_maintenance) through
the real runner: a real Odoo server's runner, fed by a real broker, closes
a machine's sessions; the session hook counts their working time into the
equipment's meters, and the session that crosses the plan's working hours
opens its one preventive request, with no cron in between."""

import time

import owm_harness as h
import pytest

PREFIX = "shellypmminig3-0000000000e8"


@pytest.mark.timeout(180)
def test_working_time_makes_a_plan_fall_due(broker, servers):
    server = servers()
    rpc = server.rpc()
    _conn, (dev_id,) = h.setup_workshop(
        rpc, broker.port, [("Laser", PREFIX, {"poll_interval_s": 0})]
    )
    (equipment_id,) = rpc(
        "maintenance.equipment", "create", [{"name": "Laser", "mqtt_device_id": dev_id}]
    )
    # Every 30 s of work.
    (plan_id,) = rpc(
        "mqtt.maintenance.plan",
        "create",
        [
            {
                "name": "Clean the lens",
                "equipment_id": equipment_id,
                "interval_working_hours": 30 / 3600,
            }
        ],
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
    # A session of 20 s working: not due yet.
    session = [0.0] + [500.0] * 4 + [0.0] * 4
    for k, watts in enumerate(session):
        publisher.notify_status(PREFIX, t0 + 5 * k, watts)
    h.wait_closed_sessions(rpc, dev_id, 1)

    def meters():
        (row,) = rpc.search_read(
            "maintenance.equipment",
            [("id", "=", equipment_id)],
            ["mqtt_working_hours", "mqtt_session_count"],
        )
        return row

    h.wait_for(lambda: meters()["mqtt_session_count"] == 1, 20, "the meters count it")
    assert meters()["mqtt_working_hours"] == pytest.approx(20 / 3600, abs=1e-6)
    assert not rpc.search_read(
        "maintenance.request", [("mqtt_plan_id", "=", plan_id)], ["id"]
    )
    # The second session crosses 30 s: its close opens the request.
    for k, watts in enumerate(session + [0.0] * 2):
        publisher.notify_status(PREFIX, t0 + 100 + 5 * k, watts)
    h.wait_closed_sessions(rpc, dev_id, 2)
    requests = h.wait_for(
        lambda: rpc.search_read(
            "maintenance.request",
            [("mqtt_plan_id", "=", plan_id)],
            ["name", "maintenance_type", "equipment_id"],
        ),
        20,
        "the plan's request",
    )
    assert len(requests) == 1
    assert requests[0]["maintenance_type"] == "preventive"
    assert requests[0]["equipment_id"][0] == equipment_id
    assert meters()["mqtt_session_count"] == 2
    assert meters()["mqtt_working_hours"] == pytest.approx(40 / 3600, abs=1e-6)
    assert not rpc.search_read("mqtt.session.hook.failure", [], ["error"])
