"""The bridge core without Odoo: routing, dedupe, rate caps, polls, watchdog."""

import gc
import json

import pytest

from ....services.engine.batch import (
    Batch,
    CloseSession,
    OpenSession,
    UpdateSession,
    WriteResult,
)
from ....services.engine.device import DeviceConfig
from ....services.engine.engine import SAME_INSTANT, Engine
from ....services.engine.types import DetectorConfig
from ....services.mqtt.inbound import InboundMessage
from ... import fixtures

T0 = 1_780_000_000.0
PREFIX = "shellypmminig3-aabbccddeeff"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def cfg(dev_id=1, prefix=PREFIX, **kw):
    values = {
        "id": dev_id,
        "name": f"Machine {dev_id}",
        "connection_id": 1,
        "company_id": 1,
        "parser_type": "shelly_gen2",
        "topic_prefix": prefix,
        "topic_pattern": None,
        "component": "pm1:0",
        "detector": DetectorConfig(),
        "poll_interval_s": 5.0,
        "log_raw": False,
        "max_msg_rate": 50,
    }
    values.update(kw)
    return DeviceConfig(**values)


_mid = iter(range(1, 1_000_000))


def frame(ts, power, prefix=PREFIX, mid=None, dup=False, energy=None):
    comp = {"apower": power}
    if energy is not None:
        comp["aenergy"] = {"total": energy}
    payload = json.dumps(
        {
            "src": prefix,
            "dst": f"{prefix}/events",
            "method": "NotifyStatus",
            "params": {"ts": ts, "pm1:0": comp},
        }
    ).encode()
    return InboundMessage(
        f"{prefix}/events/rpc", payload, 1, mid or next(_mid), dup, False, ts, 1
    )


def raw(topic, payload, mid=None, received_at=T0):
    return InboundMessage(
        topic, payload, 1, mid or next(_mid), False, False, received_at, 1
    )


@pytest.fixture
def setup():
    clock = Clock()
    core = Engine(clock=clock)
    core.add_connection(1, "owm-test", discovery=False)
    core.connection_up(1, session_present=False)
    batch = Batch()
    core.upsert_device(cfg(), batch)
    return core, clock, batch


def ops(batch, dev_id=1):
    """The machine's session ops as (kind, data): the typed ops of the batch."""
    work = batch.sessions.get(dev_id)
    return [op_pair(op) for op in (work.ops if work else [])]


def op_pair(op):
    if type(op) is OpenSession:
        return ("open", {"start_ts": op.start_ts, "manual": op.manual})
    if type(op) is UpdateSession:
        return ("progress", op.summary)
    assert type(op) is CloseSession, op
    return ("close", op.summary)


def test_a_session_from_shelly_frames(setup):
    core, clock, batch = setup
    # Readings < 20 s apart (the silence timeout), then a drop at T0 + 55.
    steps = [
        (T0, 0.0),
        (T0 + 10, 500.0),
        (T0 + 25, 520.0),
        (T0 + 40, 510.0),
        (T0 + 55, 2.0),
    ]
    for ts, watts in steps:
        clock.now += 1
        core.handle(1, frame(ts, watts), batch)
    core.handle(1, frame(T0 + 72, 1.0), batch)
    kinds = [op for op, _ in ops(batch)]
    assert kinds == ["open", "close"]
    opened = ops(batch)[0][1]
    assert opened == {"start_ts": T0 + 10, "manual": False}
    closed = ops(batch)[1][1]
    assert closed.start_time == T0 + 10
    assert closed.end_time == T0 + 55
    assert closed.end_reason == "power_drop"
    assert closed.working_duration_s == pytest.approx(45.0)
    assert closed.standby_duration_s == pytest.approx(0.0)
    assert batch.dirty == {1}
    assert batch.stats[1]["readings"] == 6
    assert len(batch.acks) == 6
    live = core.devices[1].live_row()
    assert live.state == "idle"
    assert live.power_w == 1.0
    assert live.shelly_id == PREFIX


def test_redelivery_of_a_committed_message_is_skipped():
    core = Engine(clock=Clock())
    core.add_connection(1, "owm-test", discovery=False, committed_mids=[41, 42])
    batch = Batch()
    core.upsert_device(cfg(), batch)
    core.handle(1, frame(T0, 300.0, mid=41, dup=True), batch)
    assert batch.stats[1]["duplicates"] == 1
    assert batch.stats[1]["readings"] == 0
    assert core.devices[1].state_machine.last_ts is None
    # A new message that reuses mid 42 (the broker got our ack) is processed.
    core.handle(1, frame(T0 + 1, 300.0, mid=42, dup=False), batch)
    assert batch.stats[1]["readings"] == 1
    assert core.committed_mids(1) == [41]
    core.committed(batch, WriteResult({}))
    assert core.committed_mids(1) == []


def test_stale_and_duplicate_frames_change_nothing(setup):
    core, clock, batch = setup
    core.handle(1, frame(T0 + 10, 500.0), batch)
    clock.now += 1
    core.handle(1, frame(T0 + 5, 0.0), batch)  # older: a late redelivery
    assert core.devices[1].state_machine.power_w == 500.0
    assert core.devices[1].state_machine.state == "starting"
    clock.now += 1
    msg = frame(T0 + 20, 400.0)
    core.handle(1, msg, batch)
    core.handle(1, msg._replace(mid=9999), batch)  # overlapping subscription
    assert batch.stats[1]["duplicates"] == 1
    assert batch.stats[1]["readings"] == 2
    assert batch.stats[1]["stale"] == 1


def test_frames_in_one_millisecond_are_all_read(setup):
    """The history's 1 ms grid must not turn a newer frame into a duplicate:
    a Gen1 meter's power and counter arrive back to back, a burst shares a
    millisecond."""
    core, clock, batch = setup
    gen1 = "shellies/shellyplug-s-7c87ce65a1b2"
    core.upsert_device(
        cfg(2, prefix=gen1, parser_type="shelly_gen1", component="relay:0"), batch
    )
    machine = core.devices[2].state_machine
    at = T0 + 0.0001
    core.handle(1, raw(f"{gen1}/relay/0/power", b"500", received_at=at), batch)
    core.handle(1, raw(f"{gen1}/relay/0/energy", b"600", received_at=at + 2e-4), batch)
    assert (machine.last_ts, core.devices[2].energy_wh) == (T0 + 0.001, 10.0)
    for n in range(1, 4):  # a burst within the same 0.3 ms
        body = str(500 + n).encode()
        later = at + 2e-4 + n * 1e-4
        core.handle(1, raw(f"{gen1}/relay/0/power", body, received_at=later), batch)
    assert (machine.last_ts, machine.power_w) == (T0 + 0.004, 503.0)
    assert batch.stats[1]["readings"] == 5
    assert batch.stats[1]["stale"] == 0
    # Later arrivals take their own time again once it has caught up.
    core.handle(1, raw(f"{gen1}/relay/0/power", b"7", received_at=T0 + 1), batch)
    assert machine.last_ts == T0 + 1


def test_a_copy_or_an_older_frame_stays_refused_on_the_grid(setup):
    core, _clock, batch = setup
    machine = core.devices[1].state_machine
    core.handle(1, frame(T0 + 10.0004, 500.0), batch)
    core.handle(1, frame(T0 + 10.0004, 500.0), batch)  # the same frame again
    core.handle(1, frame(T0 + 10.0002, 400.0), batch)  # older, same millisecond
    assert (machine.last_ts, machine.power_w) == (T0 + 10.0, 500.0)
    assert (batch.stats[1]["duplicates"], batch.stats[1]["stale"]) == (1, 1)
    core.handle(1, frame(T0 + 10.0007, 300.0), batch)  # newer: 1 ms on
    assert (machine.last_ts, machine.power_w) == (T0 + 10.001, 300.0)


def test_two_frames_of_one_device_instant_are_both_read(setup):
    """A Shelly's clock gives the power and the counter right behind it the
    same time: the second, with other values, goes 1 ms on; a copy does not."""
    core, clock, batch = setup
    machine = core.devices[1].state_machine
    core.handle(1, frame(T0 + 10, 500.0), batch)
    core.handle(1, frame(T0 + 10, 500.0, energy=1234.5), batch)
    assert (machine.last_ts, core.devices[1].energy_wh) == (T0 + 10.001, 1234.5)
    # The meter sends the pair again, later than the engine's 50 ms window
    # for a payload seen twice: both copies are refused by their values.
    clock.now += 1
    core.handle(1, frame(T0 + 10, 500.0), batch)
    core.handle(1, frame(T0 + 10, 500.0, energy=1234.5), batch)
    assert (machine.last_ts, machine.power_w) == (T0 + 10.001, 500.0)
    stats = batch.stats[1]
    assert (stats["readings"], stats["duplicates"], stats["stale"]) == (2, 0, 2)
    # A third frame of that instant with a power of its own is read.
    core.handle(1, frame(T0 + 10, 620.0), batch)
    assert (machine.last_ts, machine.power_w) == (T0 + 10.002, 620.0)


def test_what_a_machine_keeps_of_its_last_reading_is_not_tracked_by_the_gc(setup):
    """Kept a second per machine, a tracked object would reach the oldest
    generation at 1,000 machines a second, and with it the full collections
    that walk Odoo's whole heap; numbers in one tuple are untracked at once."""
    core, clock, batch = setup
    core.handle(1, frame(T0 + 10, 500.0), batch)
    core.handle(1, frame(T0 + 10, 500.0, energy=1234.5), batch)
    gc.collect(0)
    assert not gc.is_tracked(core.devices[1].last_read)


def test_a_clock_standing_still_keeps_a_bounded_memory_of_its_instant(setup):
    core, clock, batch = setup
    machine = core.devices[1].state_machine
    for n in range(20):  # every frame at one device time, each a new power
        clock.now += 1
        core.handle(1, frame(T0 + 10, 100.0 + n), batch)
    assert (machine.last_ts, machine.power_w) == (T0 + 10.019, 119.0)
    assert len(core.devices[1].last_read) == 1 + 2 * SAME_INSTANT  # time, values
    clock.now += 1
    core.handle(1, frame(T0 + 10, 101.0), batch)  # remembered: a copy
    assert batch.stats[1]["stale"] == 1


def test_rate_cap_drops_excess_and_flags_the_device(setup):
    core, clock, batch = setup
    core.upsert_device(cfg(max_msg_rate=5), batch)
    for i in range(100):
        core.handle(1, frame(T0 + i * 0.001, 10.0 + i), batch)
    assert batch.stats[1]["readings"] == 10  # the burst: 2 s worth
    assert batch.stats[1]["rate_limited"] == 90
    assert core.devices[1].rate_limited is True
    clock.now += 10
    core.handle(1, frame(T0 + 50, 5.0), batch)
    assert core.devices[1].rate_limited is False


def test_rejected_payload_is_counted_and_logged_once(setup, caplog):
    core, clock, batch = setup
    for _ in range(5):
        core.handle(1, raw(f"{PREFIX}/events/rpc", b'{"src": "x", "params": '), batch)
        clock.now += 0.1
    assert batch.stats[1]["rejected"] == 5
    rows = [r for r in batch.raw_rows if r.status == "rejected"]
    assert len(rows) == 1
    assert rows[0].detail.startswith("malformed_json")
    assert rows[0].company_id == 1
    warnings = [r for r in caplog.records if "rejected a frame" in r.getMessage()]
    assert len(warnings) == 1


def test_subscriptions_follow_the_machines(setup):
    """The minimal filter set is kept per distinct set of filters: a machine
    added, re-addressed or removed changes it, and a caller's copy is its own."""
    core, _clock, batch = setup
    first = core.subscriptions(1)
    assert f"{PREFIX}/events/rpc" in first
    first.append("mine/#")
    assert core.subscriptions(1) == first[:-1]
    other = "shellypmminig3-112233445566"
    core.upsert_device(cfg(2, prefix=other), batch)
    assert f"{other}/events/rpc" in core.subscriptions(1)
    core.upsert_device(cfg(2, prefix="shellypmminig3-998877665544"), batch)
    now = core.subscriptions(1)
    assert f"{other}/events/rpc" not in now
    assert "shellypmminig3-998877665544/events/rpc" in now
    core.remove_device(2, batch)
    assert core.subscriptions(1) == first[:-1]
    core.set_discovery(1, True)
    assert core.subscriptions(1) == sorted(
        ["+/events/rpc", *(f for f in first[:-1] if not f.endswith("/events/rpc"))]
    )


def test_a_meter_of_the_same_kind_keeps_its_learned_clock_offset(setup):
    """Re-addressed, the machine gets a new parser; one of the same kind keeps
    the clock offset the old one learned, another kind starts afresh."""
    core, _clock, batch = setup
    core.devices[1].parser.clock_offset = 12.5
    core.upsert_device(cfg(1, prefix="shellypmminig3-998877665544"), batch)
    parser = core.devices[1].parser
    assert parser.clock_offset == 12.5
    core.upsert_device(
        cfg(1, prefix="shelly1-aabbcc", parser_type="shelly_gen1", component="relay:0"),
        batch,
    )
    assert core.devices[1].parser is not parser
    assert core.devices[1].parser.clock_offset is None


def test_unmatched_topics_and_discovery(setup):
    core, clock, batch = setup
    core.set_discovery(1, True)
    assert "+/events/rpc" in core.subscriptions(1)
    assert f"{PREFIX}/events/rpc" not in core.subscriptions(1)  # covered: no copies
    other = "shellypmminig3-112233445566"
    core.handle(1, frame(T0, 40.0, prefix=other), batch)
    core.handle(1, frame(T0 + 1, 41.0, prefix=other), batch)
    assert batch.stats[1]["unmatched"] == 2
    gen2 = {"parser_type": "shelly_gen2"}
    assert batch.discovered == {
        (1, other): {"src": other, "component": "pm1:0", **gen2}
    }
    assert len([r for r in batch.raw_rows if r.status == "unmatched"]) == 1
    # A Pro 3EM's frame names em:0; a Gen4 plug's announcement names none.
    pro3em = "shellypro3em-c8f09e8a1b2c"
    status = fixtures.frame("shellypro3em_fw1.2.2_events_notify_status_em.json")
    body = status.replace(b"shellypro3em-c8f09e8841d8", pro3em.encode())
    core.handle(1, raw(f"{pro3em}/events/rpc", body), batch)
    plug = "shellyplugpmg4-a0b1c2d3e4f5"
    online = {"src": plug, "method": "NotifyFullStatus", "params": {"ts": T0}}
    core.handle(1, raw(f"{plug}/events/rpc", json.dumps(online).encode()), batch)
    assert batch.discovered[(1, pro3em)] == {"src": pro3em, "component": "em:0", **gen2}
    assert batch.discovered[(1, plug)] == {"src": plug, "component": "pm1:0", **gen2}


def test_polls_and_their_replies(setup):
    core, clock, batch = setup
    assert core.due_polls() == []
    clock.now += 6
    polls = core.due_polls()
    assert len(polls) == 1
    conn_id, topic, payload = polls[0]
    assert (conn_id, topic) == (1, f"{PREFIX}/rpc")
    request = json.loads(payload)
    assert request["method"] == "PM1.GetStatus"
    # It answers inside its own prefix, on a topic only the runner reads.
    assert request["src"] == f"{PREFIX}/owm-test"
    reply = {
        "id": request["id"],
        "src": PREFIX,
        "dst": request["src"],
        "result": {
            "id": 0,
            "apower": 230.5,
            "voltage": 231.0,
            "aenergy": {"total": 12.5},
        },
    }
    core.handle(1, raw(f"{PREFIX}/owm-test/rpc", json.dumps(reply).encode()), batch)
    assert core.devices[1].state_machine.power_w == 230.5
    assert core.devices[1].energy_wh == 12.5
    assert core.due_polls() == []  # just heard from it
    # The same answer again, or one to a request never sent: refused, counted.
    clock.now += 1
    core.handle(1, raw(f"{PREFIX}/owm-test/rpc", json.dumps(reply).encode()), batch)
    assert batch.stats[1]["rejected"] == 1
    assert [r.detail for r in batch.raw_rows if r.status == "rejected"] == [
        "unsolicited_reply: no request of ours has this id"
    ]
    assert core.devices[1].state_machine.power_w == 230.5


def test_a_meter_cannot_answer_for_another(setup):
    """A request goes to one meter; an answer with its id on another
    meter's reply topic, or claiming another src, moves nobody's power."""
    core, clock, batch = setup
    other = "shellypmminig3-665544332211"
    core.upsert_device(cfg(2, other), batch)
    clock.now += 6
    polls = {topic: json.loads(payload) for _c, topic, payload in core.due_polls()}
    request = polls[f"{PREFIX}/rpc"]
    forged = {
        "id": request["id"],
        "src": PREFIX,
        "dst": request["src"],
        "result": {"id": 0, "apower": 2222.0},
    }
    core.handle(1, raw(f"{other}/owm-test/rpc", json.dumps(forged).encode()), batch)
    assert core.devices[1].state_machine.power_w is None
    assert core.devices[2].state_machine.power_w is None
    assert batch.stats[1]["rejected"] == 1
    # The old shared reply topic is nobody's any more.
    core.handle(1, raw("owm-test/rpc", json.dumps(forged).encode()), batch)
    assert core.devices[1].state_machine.power_w is None
    assert batch.stats[1]["unmatched"] == 1


def test_silence_times_out_only_while_connected(setup):
    core, clock, batch = setup
    core.handle(1, frame(T0, 500.0), batch)
    clock.now += 4
    core.tick(batch)  # start debounce (3 s) + grace passed: the session opens
    assert [op for op, _ in ops(batch)] == ["open"]
    core.connection_down(1)
    clock.now += 120
    core.tick(batch)
    assert [op for op, _ in ops(batch)] == ["open"], "a broker outage is not silence"
    core.connection_up(1, session_present=True)
    clock.now += 20.5
    core.tick(batch)
    assert [op for op, _ in ops(batch)] == ["open"]
    clock.now += 1.0
    core.tick(batch)
    op, summary = ops(batch)[-1]
    assert op == "close"
    assert summary.end_reason == "timeout"
    assert summary.end_time == T0
    assert summary.start_time == T0


def test_database_wins_about_manual_sessions(setup):
    core, clock, batch = setup
    core.handle(1, frame(T0, 50.0), batch)
    # A user started a session by hand (the database has it, the machine not).
    core.upsert_device(cfg(running_session_id=77, running_start_ts=T0 + 1), batch)
    dev = core.devices[1]
    assert dev.session_id == 77
    assert dev.state_machine.session is not None
    assert "open" not in [op for op, _ in ops(batch)]
    # ... and stopped it by hand: the machine follows without writing anything.
    core.upsert_device(cfg(), batch)
    assert dev.session_id is None
    assert dev.state_machine.session is None
    assert "close" not in [op for op, _ in ops(batch)]


def test_a_batch_waits_from_its_first_message_s_arrival():
    # The flush interval runs from when the first message arrived, not from
    # when the runner took it: one that queued while the last batch was
    # written does not wait that long again.
    clock = Clock()
    core = Engine(clock=clock, wall=lambda: T0 + 50.0)
    core.add_connection(1, "owm-test", discovery=False)
    core.connection_up(1, session_present=False)
    batch = Batch()
    core.upsert_device(cfg(), batch)
    assert batch.started is None
    queued = frame(T0 + 49.85, 5.0)._replace(received_at=T0 + 49.85)
    core.handle(1, queued, batch)
    assert batch.started == pytest.approx(clock.now - 0.15)
    clock.now += 0.1
    core.handle(1, frame(T0 + 49.9, 5.0)._replace(received_at=T0 + 50.0), batch)
    assert batch.started == pytest.approx(999.85)  # its first message's
    # A wall clock set back since the message arrived: it counts from now.
    later = Batch()
    core.handle(1, frame(T0 + 49.95, 5.0)._replace(received_at=T0 + 60.0), later)
    assert later.started == clock.now


def test_progress_of_running_sessions(setup):
    core, clock, batch = setup
    core.handle(1, frame(T0, 500.0), batch)
    core.handle(1, frame(T0 + 5, 100.0), batch)
    core.seal(batch)
    assert [op for op, _ in ops(batch)] == ["open", "progress"]
    core.committed(batch, WriteResult({1: 5}))
    assert core.devices[1].session_id == 5
    batch = Batch()
    core.handle(1, frame(T0 + 6, 110.0), batch)  # still working: no state change
    core.seal(batch)
    assert ops(batch) == []  # durations are written every 30 s
    core.handle(1, frame(T0 + 7, 60.0), batch)  # working -> standby: not at once
    core.seal(batch)
    assert ops(batch) == []
    clock.now += 31
    core.seal(batch)
    progress = ops(batch)[0][1]
    assert progress.start_time == T0
    assert progress.end_time is None
    assert progress.working_duration_s == pytest.approx(7.0)
    assert progress.standby_duration_s == pytest.approx(0.0)
    core.committed(batch, WriteResult({1: 5}))
    batch = Batch()
    core.handle(1, frame(T0 + 8, 60.0), batch)
    core.seal(batch)
    assert ops(batch) == []  # the next one 30 s later


def test_discovery_is_capped(setup, caplog):
    core, clock, batch = setup
    core.set_discovery(1, True)
    for n in range(150):
        other = f"shellypmminig3-{0xFF0000000000 + n:012x}"
        core.handle(1, frame(T0 + n, 40.0, prefix=other), batch)
        clock.now += 1
    assert len(batch.discovered) == 100
    warnings = [r for r in caplog.records if "wait for a manager" in r.getMessage()]
    assert len(warnings) == 1
    assert batch.stats[1]["unmatched"] == 150


def test_the_discovery_cap_counts_the_proposals_waiting(setup):
    """The cap is on machines waiting for a manager, not on every proposal
    ever made: once they are confirmed or removed, new ones are proposed."""
    core, clock, batch = setup

    def propose(first, count):
        for n in range(first, first + count):
            other = f"shellypmminig3-{0xFF0000000000 + n:012x}"
            core.handle(1, frame(T0 + n, 40.0, prefix=other), batch)
            clock.now += 1

    core.set_discovery(1, True, waiting=98)  # as the database counts them
    propose(0, 5)
    assert len(batch.discovered) == 2
    # A manager confirmed them all; the runner counts again at its reconcile.
    core.set_discovery(1, True, waiting=0)
    propose(100, 5)
    assert len(batch.discovered) == 7


OTHER = "shellypmminig3-112233445566"


@pytest.mark.log_exceptions
def test_a_frame_that_meets_a_bug_is_logged_acked_and_the_rest_flows(setup, caplog):
    """Each frame is handled under its own guard: an unexpected exception in
    one machine's parser is logged (its traceback once), the frame becomes an
    ``error`` raw row and stays in the acks, the machine is flagged, and the
    other machine's readings go on as if nothing happened."""
    core, clock, batch = setup
    core.upsert_device(cfg(2, OTHER), batch)

    def boom(topic, payload, received_at):
        raise ZeroDivisionError("a bug met by this frame")

    core.devices[1].parser.parse = boom
    for n in range(4):
        clock.now += 1
        core.handle(1, frame(T0 + 10 * n, 500.0), batch)
        core.handle(1, frame(T0 + 10 * n, 500.0, prefix=OTHER), batch)
    assert len(batch.acks) == 8
    assert [a[2] for a in batch.acks] == [1, 2] * 4
    errors = [r for r in batch.raw_rows if r.status == "error"]
    assert len(errors) == 4 and {r.device_id for r in errors} == {1}
    assert errors[0].detail == "ZeroDivisionError: a bug met by this frame"
    assert batch.stats[1]["errors"] == 4
    assert batch.stats[1]["readings"] == 4
    # The healthy machine opened its session; the broken one is flagged.
    assert [kind for kind, _ in ops(batch, 2)] == ["open"]
    assert ops(batch, 1) == []
    core.seal(batch)
    assert batch.live[1].fault == "ZeroDivisionError: a bug met by this frame"
    assert batch.live[2].fault is None
    tracebacks = [r for r in caplog.records if "could not be processed" in r.message]
    assert len(tracebacks) == 1
    assert "Traceback" in tracebacks[0].getMessage()
    again = [r for r in caplog.records if "failed again" in r.getMessage()]
    assert len(again) == 3
    # Written once: the flag stays in the database, not in every later row.
    core.committed(batch, WriteResult({2: 9}))
    assert core.devices[1].fault is None


@pytest.mark.log_exceptions
def test_a_bug_with_no_machine_is_kept_too(setup, caplog, monkeypatch):
    core, clock, batch = setup

    def boom(*_args):
        raise KeyError("routing")

    monkeypatch.setattr(core, "_unmatched", boom)
    with caplog.at_level("ERROR"):
        core.handle(1, raw("nobody/listens/here", b"{}"), batch)
    assert [a[2] for a in batch.acks] == [None]
    (row,) = batch.raw_rows
    assert (row.status, row.device_id, row.detail) == (
        "error",
        None,
        "KeyError: 'routing'",
    )


def test_a_frame_dated_hours_ahead_does_not_stall_the_meter(setup):
    """One frame 22 h ahead: counted, read at its receive time; the meter's
    real frames after it are read, and its session is dated by them."""
    core, clock, batch = setup
    core.handle(1, frame(T0, 0.0), batch)
    ahead = json.loads(frame(T0 + 22 * 3600, 900.0).payload)
    clock.now += 1
    core.handle(
        1,
        raw(f"{PREFIX}/events/rpc", json.dumps(ahead).encode(), received_at=T0 + 1),
        batch,
    )
    assert batch.stats[1]["clock_refused"] == 1
    for n in range(2, 10):
        clock.now += 1
        core.handle(1, frame(T0 + n, 600.0 + n), batch)
    machine = core.devices[1].state_machine
    assert machine.power_w == 609.0
    assert machine.last_ts == T0 + 9
    assert machine.session.start_time == T0 + 1
    assert batch.stats[1]["readings"] == 10


def test_only_a_machine_built_anew_needs_its_stored_state(setup):
    # A reconcile reads the stored snapshots and history tail only where
    # upsert_device builds the machine or its parser anew.
    core, _clock, batch = setup
    core.add_connection(2, "owm-test-2", discovery=False)
    dev = core.devices[1]
    for same in (
        cfg(),
        cfg(name="Renamed", max_msg_rate=10, poll_interval_s=0),
        cfg(detector=DetectorConfig(stop_debounce_s=30.0)),
    ):
        assert not core.needs_state(same)
        parser, machine = dev.parser, dev.state_machine
        core.upsert_device(same, batch)
        assert core.devices[1] is dev
        assert (dev.parser, dev.state_machine) == (parser, machine)
    for anew in (
        cfg(prefix="shellypmminig3-000000000003"),
        cfg(component="em1:0"),
        cfg(options={"json_power_path": "ENERGY.Power"}),
        cfg(connection_id=2),
        cfg(prefix="shellypmminig3-000000000003", connection_id=2),
    ):
        assert core.needs_state(anew)
        parser = dev.parser
        core.upsert_device(anew, batch)
        assert dev.parser is not parser
    assert core.needs_state(cfg(7, prefix="shellypmminig3-000000000007"))
    core.remove_device(1, Batch())
    assert core.needs_state(cfg())
