"""tools/shelly_meter_3em.py: the simulated Pro 3EM, read back by our parser
on ``em:0`` exactly as the firmware's frames are."""

import json
import pathlib
import sys

import pytest

from ...parsers import ShellyGen2Parser, poll_request
from .. import fixtures

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import shelly_sim as sim  # noqa: E402

START = 1_767_225_600.37
DEV = "shellypro3em-d0ca5e000004"


def meter(**kw):
    kw.setdefault("start_ts", START)
    return sim.make_meter(DEV, "saw3", seed=3, **kw)


@pytest.mark.parametrize("status_topic", [False, True], ids=["events", "status"])
def test_an_hour_of_a_format_saw_reads_as_the_meter_reported(status_topic):
    m = meter(status_topic=status_topic)
    assert isinstance(m, sim.ThreePhaseMeter)
    parser = ShellyGen2Parser(m.prefix, "em:0")
    powers, counters = [], []
    for frame in m.frames(3600):
        reading = parser.parse(frame.topic, frame.payload, frame.device_ts + 0.05)
        if frame.topic == m.online_topic:
            continue
        assert reading.power_w == pytest.approx(m.reported_power)
        assert reading.ts == pytest.approx(frame.device_ts, abs=1e-6)
        powers.append(reading.power_w)
        if reading.energy_wh is not None:  # the meter's exact counter now
            exact = m.energy_wh(frame.device_ts - START)
            counters.append((reading.energy_wh, exact))
    # A 4 kW motor: cuts between 3 and 4.5 kW, 0 W in between.
    assert max(powers) <= 4500 and max(powers) >= 3000
    assert min(powers) == 0.0
    # The counter (emdata:0 total_act, Wh) every minute, and it agrees with
    # the meter's exact integral to the firmware's two decimals.
    assert len(counters) >= 60
    for wh, exact in counters:
        assert wh == pytest.approx(exact, abs=0.006)
    assert counters[-1][0] - counters[0][0] > 50  # a busy hour of sawing


def test_the_phases_add_up_to_the_total_and_look_like_the_firmware():
    m = meter()
    m.advance(600)
    status = m.status()
    phases = [status[f"{p}_act_power"] for p in "abc"]
    assert sum(phases) == pytest.approx(status["total_act_power"], abs=0.15)
    assert all(0.3 < share < 0.37 for share in m.shares)
    real = json.loads(
        fixtures.frame("shellypro3em_fw1.6.1_rpc_reply_em_getstatus.json")
    )["result"]
    assert set(status) == set(real) - {"user_calibrated_phase"}
    data = json.loads(m.emdata_json())
    assert data["total_act"] == pytest.approx(
        sum(data[f"{p}_total_act_energy"] for p in "abc"), abs=0.02
    )


def test_poll_replies_are_read_and_other_methods_refused():
    m = meter()
    m.advance(300)
    parser = ShellyGen2Parser(m.prefix, "em:0")
    topic, request = poll_request("em:0", 9, "owm-test")
    assert (topic, json.loads(request)["method"]) == ("rpc", "EM.GetStatus")
    reply = m.reply(request)
    assert reply.topic == "owm-test/rpc"
    reading = parser.parse(reply.topic, reply.payload, reply.device_ts)
    assert reading.power_w == pytest.approx(m.reported_power)
    whole = m.reply(json.dumps({"id": 1, "src": "x", "method": "Shelly.GetStatus"}))
    result = json.loads(whole.payload)["result"]
    assert {"em:0", "emdata:0", "sys"} <= set(result)
    data = m.reply(json.dumps({"id": 2, "src": "x", "method": "EMData.GetStatus"}))
    assert json.loads(data.payload)["result"]["total_act"] > 0
    for method, params in (("PM1.GetStatus", {}), ("EM.GetStatus", {"id": 1})):
        ask = {"id": 3, "src": "x", "method": method, "params": params}
        assert "error" in json.loads(m.reply(json.dumps(ask)).payload)


def test_the_demo_plays_a_pro_3em_and_the_seeded_saw_is_unchanged():
    assert ("saw3", DEV) in sim.DEMO
    # The single-phase saw's schedule did not move when the three-phase one
    # was derived from it: what the same seed played before, frame by frame.
    saw = sim.make_meter("shellypmminig3-d0ca5e000002", "saw", seed=3, start_ts=START)
    assert type(saw) is sim.Meter
    frames = [
        (f.device_ts, saw.reported_power)
        for f in saw.frames(900)
        if f.topic.endswith("/events/rpc")
    ]
    assert len(frames) == 71
    assert [f for f in frames if f[1] > 0][:3] == [
        (1767225619.37, 1652.1),
        (1767225670.37, 1512.9),
        (1767225671.37, 1925.5),
    ]
    with pytest.raises(ValueError, match="shellypro3em-"):
        sim.ThreePhaseMeter("shellypmminig3-d0ca5e000002", "saw3")
