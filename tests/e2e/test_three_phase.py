"""Three-phase machines through the real runner.

A format saw on a simulated Shelly Pro 3EM (``em:0``, counters on
``emdata:0``) plays half an hour of cuts: the runner's sessions are the ones
the *sum of the three phases* of every frame gives, and their energy the
counter's.  A planer on a Gen1 Shelly 3EM is metered by its three channels
summed (``emeter:0+emeter:1+emeter:2``): each reading is the sum of the
phases' held powers, the counter the sum of their totals.
"""

import json
import time

import owm_harness as h
import pytest
import shelly_sim as sim
from harness_base import import_addon

import_addon()
from open_workshop_mqtt.services.engine.replay import replay  # noqa: E402
from open_workshop_mqtt.services.engine.types import DetectorConfig  # noqa: E402

PRO = "shellypro3em-0000000003e1"
EM3 = "shellies/shellyem3-0000000003e2"
SAW = {
    "component": "em:0",
    "poll_interval_s": 0,
    "log_raw": True,
    "max_msg_rate": 2000,
    "standby_threshold_w": 50,
    "working_threshold_w": 1000,
    "start_debounce_s": 1,
    "stop_debounce_s": 15,
    "message_timeout_s": 90,
}
PLANER = {
    "parser_type": "shelly_gen1",
    "component": "emeter:0+emeter:1+emeter:2",
    "log_raw": True,
    "standby_threshold_w": 50,
    "working_threshold_w": 1000,
    "start_debounce_s": 1,
    "stop_debounce_s": 2,
    "message_timeout_s": 60,
}
DETECTOR = (
    "standby_threshold_w",
    "working_threshold_w",
    "start_debounce_s",
    "stop_debounce_s",
    "message_timeout_s",
)


def phase_sums(frames):
    """(ts, a + b + c) of every em:0 frame: the machine's power by phase."""
    out = []
    for frame in frames:
        if not frame.topic.endswith("/events/rpc"):
            continue
        em = json.loads(frame.payload)["params"].get("em:0")
        if em:
            total = sum(em[f"{p}_act_power"] for p in "abc")
            out.append((frame.device_ts, round(total, 3)))
    return out


@pytest.mark.timeout(240)
def test_three_phase_machines_are_metered_by_their_summed_phases(
    broker, servers, publisher
):
    server = servers()
    rpc = server.rpc()
    conn_id, (saw_id, planer_id) = h.setup_workshop(
        rpc, broker.port, [("Format Saw", PRO, SAW), ("Planer", EM3, PLANER)]
    )
    h.wait_state(rpc, conn_id, "connected", 20)

    # -- the Pro 3EM: half an hour of simulated cuts, sent at once ----------
    meter = sim.make_meter(PRO, "saw3", seed=11, start_ts=round(time.time()) - 3600.0)
    frames = meter.advance(1800)
    for frame in frames:
        publisher.raw(frame.topic, frame.payload)
    config = DetectorConfig(**{k: SAW[k] for k in DETECTOR})
    last = frames[-1].device_ts
    expected = replay(phase_sums(frames), config, until=last + 3600)
    assert len(expected) >= 3 and all(s.end_time for s in expected)

    # -- the Gen1 3EM: phases one by one, on the receive clock ---------------
    powers = {0: 0.0, 1: 0.0, 2: 0.0}
    sums = []
    timeline = []  # (monotonic s, summed W) as published

    def phase(n, watts):
        publisher.raw(f"{EM3}/emeter/{n}/power", f"{watts:.2f}")
        powers[n] = watts
        sums.append(round(sum(powers.values()), 2))
        timeline.append((time.monotonic(), sums[-1]))
        time.sleep(0.15)

    def wh_since(start):
        """Wh of the summed power as published, from monotonic ``start`` on."""
        points = [*timeline, (time.monotonic(), 0.0)]
        return (
            sum(
                a[1] * max(0.0, b[0] - max(a[0], start))
                for a, b in zip(points, points[1:], strict=False)
            )
            / 3600
        )

    for n in range(3):
        phase(n, 0.0)
    for n, wh in enumerate((100.0, 200.0, 300.0)):  # counters, held while idle
        publisher.raw(f"{EM3}/emeter/{n}/total", f"{wh:.1f}")
    rise = time.monotonic()
    for _second in range(4):
        for n, watts in enumerate((1210.5, 1250.25, 1149.0)):
            phase(n, watts)
        time.sleep(0.5)
    # The meter counts 10 % more than the powers say (as meters disagree): the
    # session's energy is the counter's, not the integral's.
    counted = 1.1 * wh_since(rise)
    counted_at = time.monotonic()
    for n, wh in enumerate((100.0, 200.0, 300.0)):
        publisher.raw(f"{EM3}/emeter/{n}/total", f"{wh + counted / 3:.3f}")
    for n in range(3):
        phase(n, 0.0)
    tail_wh = wh_since(counted_at)  # after the last counter, until the drop
    publisher.flush()

    # -- the saw: every session as the phases sum up -------------------------
    got = h.wait_closed_sessions(rpc, saw_id, len(expected), timeout=90)
    for row, want in zip(got, expected, strict=True):
        assert (row["start_ts"], row["end_ts"], row["end_reason"]) == (
            pytest.approx(want.start_time, abs=1e-3),
            pytest.approx(want.end_time, abs=1e-3),
            want.end_reason,
        )
        assert row["working_duration_s"] == pytest.approx(
            want.working_duration_s, abs=2e-3
        )
        # The runner's energy is the meter's counter (emdata:0 total_act);
        # the phases' integral agrees within the 5 % reporting rule.
        assert row["energy_wh"] == pytest.approx(want.energy_wh, rel=0.06, abs=0.05)
    # -- the planer: readings are the phases' sums ---------------------------
    (session,) = h.wait_closed_sessions(rpc, planer_id, 1, timeout=30)
    rows = h.raw_log(rpc, planer_id, ("device_ts", "status", "power_w", "topic"))
    power_rows = [r for r in rows if r["topic"].endswith("/power")]
    read = [r["power_w"] for r in power_rows if r["status"] == "reading"]
    # Until every phase has spoken there is no sum ("no_power").
    assert [r["status"] for r in power_rows[:2]] == ["not_reading"] * 2
    assert read == pytest.approx(sums[2:], abs=0.01)
    rising = next(r for r in power_rows if r["status"] == "reading" and r["power_w"])
    falling = [r for r in power_rows if r["status"] == "reading"][-1]
    # (Frames that share a millisecond are placed 1 ms apart on the grid.)
    assert (session["start_ts"], session["end_ts"], session["end_reason"]) == (
        pytest.approx(rising["device_ts"], abs=0.01),
        pytest.approx(falling["device_ts"], abs=0.01),
        "power_drop",
    )
    (planer,) = rpc("mqtt.device", "read", [planer_id], ["current_energy_wh"])
    assert planer["current_energy_wh"] == pytest.approx(600.0 + counted, abs=0.003)
    # The counters' difference, then the summed power until the drop.
    assert session["energy_wh"] == pytest.approx(counted + tail_wh, abs=0.03)
    h.figures(
        "three-phase",
        saw_frames=len(frames),
        saw_sessions=len(got),
        saw_energy_wh=round(sum(r["energy_wh"] for r in got), 2),
        saw_energy_by_phases_wh=round(sum(s.energy_wh for s in expected), 2),
        planer_readings=len(read),
    )
