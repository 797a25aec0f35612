"""Hostile payloads and odd topics published at a real broker.

A Shelly device and a generic device (``hostile/#``) get a catalogue of bad
frames, forty times over, while a normal meter next to them plays a session.
The runner keeps going: the normal session is exact, every rejection is
counted (``stat_rejected``) and explained in the raw log (``status =
rejected``, ``detail`` starting with its code), the Odoo log says it once per
device and reason (not once per frame), and no traceback."""

import json
import os
import time

import owm_harness as h
import pytest

NORMAL = "shellypmminig3-00000000b001"
BAD = "shellypmminig3-00000000bad1"
HOSTILE = {"poll_interval_s": 0, "log_raw": True, "max_msg_rate": 10_000}
REPEAT = 40


def notify(ts, power, **extra):
    frame = {"src": BAD, "method": "NotifyStatus", "params": {"ts": ts}}
    frame["params"]["pm1:0"] = {"apower": power}
    frame.update(extra)
    return json.dumps(frame)


def notify_literal(ts, literal):
    """A NotifyStatus whose apower is written as is (NaN, -Infinity)."""
    head = json.dumps({"src": BAD, "method": "NotifyStatus"})[:-1]
    return f'{head}, "params": {{"ts": {ts!r}, "pm1:0": {{"apower": {literal}}}}}}}'


def bad(status, code=None):
    return ("bad", status, code)


def odd(status, code=None):
    return ("odd", status, code)


def catalogue(i, now):
    """(topic, payload, expected) of round ``i``; expected is (device, status,
    code) of the raw log row, or None when the frame never reaches the runner
    (no subscription matches it)."""
    ev = f"{BAD}/events/rpc"
    ts = now + i  # newer than the sane frame: never stale for its time
    shape = json.dumps({"method": "NotifyStatus", "params": [i]})
    reboot = json.dumps({"method": "Sys.Reboot", "params": {"ts": ts}})
    rejected, ignored = "rejected", "not_reading"
    return [
        (ev, b"\xff\xfe\x00\x81" + os.urandom(60), bad(rejected, "not_utf8")),
        (ev, notify(ts, 5.0)[:37], bad(rejected, "malformed_json")),
        (ev, notify(ts, 5.0, pad="x" * 70_000), bad(rejected, "too_large")),
        (ev, "[" * 10_000 + "]" * 10_000, bad(rejected, "too_deep")),
        (ev, notify_literal(ts, "NaN"), bad(rejected, "non_finite")),
        (ev, notify_literal(ts, "-Infinity"), bad(rejected, "non_finite")),
        (ev, notify(ts, -500.0 - i), bad(rejected, "negative_power")),
        (ev, notify(ts, 1e12 + i), bad(rejected, "absurd_power")),
        (ev, notify(ts, f"{i} W"), bad(rejected, "not_a_number")),
        (ev, notify(ts, True), bad(rejected, "not_a_number")),
        (ev, notify(f"now {i}", 5.0), bad(rejected, "invalid_ts")),
        (ev, notify(-1.0 - i, 5.0), bad(rejected, "invalid_ts")),
        (ev, shape, bad(rejected, "unexpected_shape")),
        (ev, str(i), bad(rejected, "unexpected_shape")),
        (f"{BAD}/online", f"maybe {i}", bad(rejected, "invalid_online")),
        (ev, reboot, bad(ignored, "unknown_method")),
        (ev, notify(now - 60 - i, 5.0), bad(ignored, "stale")),  # older than merged
        (ev, notify(1e9 + i, 5.0), bad("reading")),  # 25 years behind: receive time
        (ev, notify(2e10 + i, 5.0), bad("reading")),  # broken clock: receive time
        ("hostile/gerät/ü€😀/power", json.dumps({"power": 5 + i}), odd("reading")),
        ("hostile/" + "x" * 60_000, json.dumps({"power": 6 + i}), odd("reading")),
        ("hostile//a//", str(7 + i), odd("reading")),
        ("hostile/nan", f'{{"power": NaN, "n": {i}}}', odd(rejected, "non_finite")),
        ("hostile/str", json.dumps({"power": f"{i}"}), odd(rejected, "not_a_number")),
        (f"$hostile/{i}", json.dumps({"power": 5}), None),  # $-topics: no wildcard
        (f"elsewhere/{BAD}/events/rpc", notify(ts, 5.0), None),  # not subscribed
    ]


@pytest.mark.timeout(300)
def test_hostile_payloads_are_refused_and_explained(broker, servers, publisher):
    server = servers()
    rpc = server.rpc()
    generic = dict(
        HOSTILE,
        parser_type="generic_json",
        topic_pattern="hostile/#",
        topic_prefix=False,
    )
    conn_id, (normal_id, bad_id, generic_id) = h.setup_workshop(
        rpc,
        broker.port,
        [
            ("Normal", NORMAL, {"poll_interval_s": 0, "log_raw": True}),
            ("Bad", BAD, HOSTILE),
            ("Odd topics", False, generic),
        ],
    )
    h.wait_state(rpc, conn_id, "connected", 20)
    hostile = h.ShellyPublisher(broker.port)
    now = round(time.time()) - 300.0
    expected = []
    try:
        hostile.notify_status(BAD, now, 5.0)  # a sane frame first: newest ts
        expected.append(("bad", "reading", None))
        hostile.flush()
        mark = len(server.log())
        # A normal meter plays a session next to them meanwhile.
        powers = [0.0] * 3 + [500.0] * 10 + [50.0] * 5 + [500.0] * 5 + [0.0] * 18
        meter = h.PatternMeter(publisher, NORMAL, powers).start()
        for i in range(REPEAT):
            for topic, payload, expect in catalogue(i, now + 1):
                hostile.raw(topic, payload)
                if expect is not None:
                    expected.append(expect)
            time.sleep(0.2)
        hostile.flush()
        meter.join()
        publisher.flush()
    finally:
        hostile.close()
    arrived = len(expected)
    conn = h.wait_for(
        lambda: (lambda row: row if row["stat_received"] >= arrived else None)(
            h.connection_row(
                rpc, conn_id, ["stat_received", "stat_rejected", "stat_ignored"]
            )
        ),
        60,
        "every hostile frame to be handled",
    )
    got = h.wait_recorded(rpc, normal_id, meter.sent)
    (session,) = h.wait_closed_sessions(rpc, normal_id, 1)
    rows = [("bad", r) for r in h.raw_log(rpc, bad_id)]
    rows += [("odd", r) for r in h.raw_log(rpc, generic_id)]
    explained = sorted(
        (
            (dev, r["status"], (r["detail"] or "").split(":")[0] or None)
            for dev, r in rows
        ),
        key=lambda e: (e[0], e[1], e[2] or ""),
    )
    log = server.log()[mark:].splitlines()
    addon_lines = [line for line in log if "open_workshop_mqtt" in line]
    warnings = [line for line in log if "rejected a frame" in line]
    rejected = [e for e in expected if e[1] == "rejected"]
    reasons = {(dev, code) for dev, _status, code in rejected}
    h.figures(
        "hostile payloads",
        frames_published=len(catalogue(0, now)) * REPEAT + 1,
        frames_arrived=arrived,
        rejected_expected=len(rejected),
        stat_rejected=conn["stat_rejected"],
        raw_rows=len(rows),
        rejection_warnings=len(warnings),
        addon_log_lines=len(addon_lines),
        normal=got,
    )
    # Every frame that reached the runner is in the raw log, explained.
    assert explained == sorted(expected, key=lambda e: (e[0], e[1], e[2] or ""))
    assert conn["stat_rejected"] == len(rejected)
    assert conn["stat_received"] == arrived + len(meter.sent)
    # The log says it once per device and reason, not once per frame.
    assert len(warnings) == len(reasons)
    assert len(addon_lines) <= len(reasons) + 10
    assert not any("Traceback" in line for line in log)
    # The normal meter next to them: exact.
    assert (got["lost"], got["doubled"], got["redelivered"]) == (0, 0, 0)
    t0 = meter.t0
    assert (session["start_ts"], session["end_ts"]) == (t0 + 3, t0 + 23)
    assert session["end_reason"] == "power_drop"
    assert session["working_duration_s"] == pytest.approx(15.0)
    assert session["standby_duration_s"] == pytest.approx(5.0)
    assert session["energy_wh"] == pytest.approx((500 * 15 + 50 * 5) / 3600)
    assert h.connection_row(rpc, conn_id)["state"] == "connected"
