"""tools/harness_meters.delivery_figures: the exactly-once accounting that
every end-to-end fault test relies on must itself tell copies apart."""

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from harness_meters import delivery_figures  # noqa: E402


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
