"""tools/harness_meters.delivery_figures: the exactly-once accounting that
every end-to-end fault test relies on must itself tell copies apart."""

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from harness_meters import MeterStream, delivery_figures  # noqa: E402


def row(status, ts=None, detail="", payload_ts=None):
    frame = {"method": "NotifyStatus", "params": {"ts": payload_ts}}
    return {
        "device_ts": ts,
        "status": status,
        "detail": detail,
        "payload": json.dumps(frame),
    }


def test_every_frame_once():
    got = delivery_figures([1.0, 2.0], [row("reading", 1.0), row("reading", 2.0)])
    assert got == {
        "sent": 2,
        "recorded": 2,
        "lost": 0,
        "doubled": 0,
        "redelivered": 0,
        "unrecognised": 0,
        "unexpected": 0,
    }


def test_recognised_copies_of_recorded_frames():
    rows = [
        row("reading", 1.0),
        row("reading", 2.0),
        row("duplicate", 2.0),  # applied already: ts not newer
        row("not_reading", None, "stale", payload_ts=1.0),  # parser: older
    ]
    got = delivery_figures([1.0, 2.0], rows)
    assert (got["redelivered"], got["unrecognised"], got["lost"]) == (2, 0, 0)


def test_copies_that_explain_nothing_are_unrecognised():
    rows = [
        row("reading", 1.0),
        row("duplicate", 2.0),  # a copy of a frame never recorded
        row("not_reading", None, "stale", payload_ts=3.0),
        row("not_reading", None, "unknown_method", payload_ts=1.0),
        row("rejected", None, "bad_json"),
    ]
    got = delivery_figures([1.0, 2.0], rows)
    assert (got["recorded"], got["lost"]) == (1, 1)
    assert (got["redelivered"], got["unrecognised"]) == (4, 4)


def test_doubled_and_unexpected_readings():
    rows = [row("reading", 1.0), row("reading", 1.0), row("reading", 9.0)]
    got = delivery_figures([1.0], rows)
    assert (got["doubled"], got["unexpected"], got["lost"]) == (1, 1, 0)


def stream_after(frames):
    """A stream (20 on, 20 off, 1 s per frame, t0 = 0) that sent ``frames``."""
    stream = MeterStream(None, ["m"], t0=0.0)
    stream.frame_no = frames
    return stream


def test_a_cycle_counts_once_its_stop_debounce_was_sent():
    # Frame 35 is the first 15 s after the drop at frame 20: it closes it.
    assert stream_after(35).expected_sessions() == []
    assert stream_after(36).expected_sessions() == [(0.0, 20.0)]
    assert stream_after(80).expected_sessions() == [(0.0, 20.0), (40.0, 60.0)]


def test_the_settling_last_cycle_may_or_may_not_be_closed():
    assert stream_after(20).settling_session() is None  # the drop not sent
    assert stream_after(21).settling_session() == (0.0, 20.0)
    assert stream_after(35).settling_session() == (0.0, 20.0)
    assert stream_after(36).settling_session() is None  # expected instead
    stream = stream_after(70)
    assert stream.sessions_match([(0.0, 20.0)])
    assert stream.sessions_match([(0.0, 20.0), (40.0, 60.0)])
    assert not stream.sessions_match([])
    assert not stream.sessions_match([(0.0, 20.0), (40.0, 61.0)])
    assert not stream.sessions_match([(0.0, 20.0), (40.0, 60.0), (80.0, 100.0)])
    # Stopped while the machine was on: nothing is settling.
    assert not stream_after(50).sessions_match([(0.0, 20.0), (40.0, 60.0)])
