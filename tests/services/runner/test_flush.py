# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""No frame and no batch can stall the runner, and the retry policy.

Faults are injected (patched in) at the two points where a bug could hold
every machine back: handling a frame (the engine's guard) and writing a
batch (the writer's isolating retry).  In both, the other machine's readings
are committed, every frame is acknowledged once, and nothing accepted is
lost: the frames met by the bug are in the raw log as ``error`` rows.
"""

import time
from unittest.mock import patch

import psycopg2.errors
import pytest

from odoo.tests import tagged

from ....services.engine.batch import Batch, CloseSession
from ....services.engine.types import SessionSummary
from ....services.runner import flush, writer
from ....services.runner.config import load_devices
from ....services.runner.detector import SessionDetector
from .common import T0, RunnerCase

PATTERN = [(0, 0.0), (10, 500.0), (20, 520.0), (30, 1.0), (50, 600.0), (55, 610.0)]


def fails_for(device_id, original):
    """``SessionDetector.apply`` that raises for one machine only."""

    def apply(self, env, work, running, closed, found):
        if self.device_id == device_id:
            raise TypeError("a bug met by this machine's sessions")
        return original(self, env, work, running, closed, found)

    return apply


@tagged("post_install", "-at_install")
class TestNothingStallsTheRunner(RunnerCase):
    def play(self):
        for dt, watts in PATTERN:
            self.frame(T0 + dt, watts)
            self.frame(T0 + dt, watts, prefix=self.other.topic_prefix)

    def assert_other_machine_went_on(self):
        first, second = self.sessions(self.other)
        self.assertEqual((first.start_ts, first.end_ts), (T0 + 10, T0 + 30))
        self.assertEqual((second.start_ts, second.state), (T0 + 50, "running"))
        self.assertEqual(len(self.raw_rows(self.other, "reading")), len(PATTERN))
        self.assertEqual(self.other.current_power_w, 610.0)
        self.assertFalse(self.other.fault)

    @pytest.mark.log_exceptions
    def test_a_frame_that_meets_a_bug(self):
        parser = self.service.engine.devices[self.device.id].parser
        with patch.object(parser, "parse", side_effect=ZeroDivisionError("parser bug")):
            self.play()
            self.flush()
        self.assert_other_machine_went_on()
        errors = self.raw_rows(self.device, "error")
        self.assertEqual(len(errors), len(PATTERN))
        self.assertEqual(
            set(errors.mapped("detail")), {"ZeroDivisionError: parser bug"}
        )
        self.assertFalse(self.sessions())
        self.assertEqual(self.device.fault, "ZeroDivisionError: parser bug")
        self.assertEqual(self.client.acked, list(range(1, 2 * len(PATTERN) + 1)))
        self.assertEqual(self.connection.stat_errors, len(PATTERN))
        self.assertEqual(self.connection.stat_received, 2 * len(PATTERN))

    @pytest.mark.log_exceptions
    def test_a_batch_whose_write_meets_a_bug(self):
        original = SessionDetector.apply
        with patch.object(
            SessionDetector, "apply", fails_for(self.device.id, original)
        ):
            self.play()
            self.flush()
        self.assert_other_machine_went_on()
        # The failing machine's part is quarantined: its frames are error
        # rows, acknowledged; it is flagged and reloaded from the database.
        errors = self.raw_rows(self.device, "error")
        self.assertEqual(len(errors), len(PATTERN))
        self.assertEqual(
            set(errors.mapped("detail")),
            {"TypeError: a bug met by this machine's sessions"},
        )
        self.assertFalse(self.raw_rows(self.device, "reading"))
        self.assertFalse(self.sessions())
        self.assertEqual(
            self.device.fault, "TypeError: a bug met by this machine's sessions"
        )
        self.assertEqual(self.client.acked, list(range(1, 2 * len(PATTERN) + 1)))
        self.assertEqual(self.connection.stat_errors, len(PATTERN))
        self.assertNotIn(self.device.id, self.service.engine.devices)
        self.assertTrue(self.service.reload)
        # Once the bug is gone, the machine's next readings count again (the
        # reconcile the flag asks for reloads it as this does).
        for cfg in load_devices(self.env, [self.connection.id]):
            self.service.engine.upsert_device(cfg, self.batch)
        self.frame(T0 + 100, 500.0)
        self.frame(T0 + 110, 500.0)
        self.flush()
        self.assertEqual(self.sessions().start_ts, T0 + 100)

    def test_a_serialization_conflict_is_retried_and_written_once(self):
        real = writer.write_batch
        calls = []

        def conflict_once(env, batch, **kw):
            calls.append(kw.get("isolate"))
            if len(calls) == 1:
                raise psycopg2.errors.SerializationFailure("could not serialize")
            return real(env, batch, **kw)

        self.play()
        with patch.object(flush, "write_batch", conflict_once):
            self.flush()
        self.assertEqual(calls, [False, False])  # retried as it was, not isolated
        self.assertEqual(len(self.sessions()), 2)
        self.assertEqual(len(self.raw_rows(self.device, "reading")), len(PATTERN))
        self.assertEqual(len(self.client.acked), 2 * len(PATTERN))
        self.assertEqual(self.connection.stat_received, 2 * len(PATTERN))

    def test_a_lost_database_connection_is_retried_and_shown(self):
        real = writer.write_batch
        calls = []

        def lost_twice(env, batch, **kw):
            calls.append(kw.get("isolate"))
            if len(calls) <= 2:
                raise psycopg2.OperationalError("server closed the connection")
            return real(env, batch, **kw)

        self.play()
        with patch.object(flush, "write_batch", lost_twice):
            self.flush()
        self.assertEqual(calls, [False, False, False])
        self.assertEqual(self.service.flusher.errors, 2)
        self.assertEqual(len(self.raw_rows(self.other, "reading")), len(PATTERN))
        # Recovered: the form does not keep the error.
        self.assertFalse(self.service.owned[self.connection.id].last_error)

    def test_a_stop_leaves_a_failing_batch_unacknowledged(self):
        self.play()
        self.service.stopping.set()
        with patch.object(
            flush,
            "write_batch",
            side_effect=psycopg2.OperationalError("the database went away"),
        ):
            self.flush()
        self.assertEqual(self.client.acked, [])
        self.assertFalse(self.raw_rows(self.other, "reading"))

    def test_retry_delays_grow_and_spread(self):
        backoff = flush.retry_backoff()
        delays = [backoff.next() for _ in range(12)]
        self.assertTrue(0.05 <= delays[0] <= 0.1)
        self.assertTrue(all(d <= 20.0 for d in delays))
        self.assertGreaterEqual(max(delays), 10.0)


@tagged("post_install", "-at_install")
class TestARefusedWriteStaysWithItsMachine(RunnerCase):
    """The database refuses a machine's part of a batch (a unique index on
    mqtt_session): the runner resyncs that machine with it, and what a resync
    cannot cure is quarantined like any other failing part; the other
    machine's frames are committed and acknowledged in the same flush."""

    def play(self, pattern):
        for dt, watts in pattern:
            self.frame(T0 + dt, watts)
            self.frame(T0 + dt, watts, prefix=self.other.topic_prefix)

    def test_a_person_starting_a_session_in_the_middle_of_a_batch(self):
        # The machine's session opens in this batch: not yet in the database.
        self.play([(0, 0.0), (10, 500.0), (14, 500.0)])
        self.device.action_start_session()
        person = self.device.running_session_id
        self.assertEqual(person.origin, "manual")
        self.frame(T0 + 16, 520.0)
        with self.assertLogs(flush.__name__, "WARNING") as logs:
            self.flush()
        self.assertIn("resyncing", logs.output[0])
        # The machine's own session happened: written closed where the
        # person's took over, which runs on.
        auto = self.sessions() - person
        self.assertEqual(
            (auto.start_ts, auto.origin, auto.state, auto.end_reason),
            (T0 + 10, "power", "closed", "manual"),
        )
        self.assertEqual(person.state, "running")
        self.assertGreaterEqual(person.start_ts, auto.end_ts)
        self.assertEqual(self.device.running_session_id, person)
        self.assertEqual(
            self.service.engine.devices[self.device.id].session_id, person.id
        )
        self.assertFalse(self.device.fault)
        self.assertEqual(len(self.sessions(self.other)), 1)
        self.assertEqual(self.client.acked, list(range(1, 8)))
        self.assertEqual(len(self.raw_rows(self.device, "reading")), 4)

    @pytest.mark.log_exceptions
    def test_a_refusal_no_resync_cures_is_quarantined(self):
        original = SessionDetector.apply
        calls = []

        def refused(detector, env, work, running, closed, found):
            if detector.device_id == self.device.id:
                calls.append(len(work.ops))
                raise psycopg2.errors.UniqueViolation(
                    "duplicate key value violates unique constraint "
                    '"mqtt_session_device_start_unique"'
                )
            return original(detector, env, work, running, closed, found)

        self.play(PATTERN)
        with patch.object(SessionDetector, "apply", refused):
            self.flush()
        # Tried once, resynced MAX_RESYNCS times, then written apart: never
        # more, and the batch did not grow on the way.
        self.assertEqual(len(calls), flush.MAX_RESYNCS + 2)
        self.assertEqual(len(set(calls)), 1)
        self.assertEqual(len(self.sessions(self.other)), 2)
        self.assertEqual(len(self.raw_rows(self.other, "reading")), len(PATTERN))
        self.assertEqual(self.client.acked, list(range(1, 2 * len(PATTERN) + 1)))
        errors = self.raw_rows(self.device, "error")
        self.assertEqual(len(errors), len(PATTERN))
        self.assertIn("UniqueViolation", self.device.fault)
        self.assertEqual(self.connection.stat_errors, len(PATTERN))
        self.assertFalse(self.sessions())
        self.assertNotIn(self.device.id, self.service.engine.devices)


@tagged("post_install", "-at_install")
class TestWhenABatchIsWritten(RunnerCase):
    """A batch with messages is written when it is full or its first message
    waited the flush interval, a session the readings opened or closed
    included; a change no message brought (a timeout) at once."""

    def test_a_session_change_waits_with_the_readings(self):
        for dt, watts in PATTERN:
            self.frame(T0 + dt, watts)
        ops = [type(op).__name__ for op in self.batch.sessions[self.device.id].ops]
        self.assertEqual(ops, ["OpenSession", "CloseSession", "OpenSession"])
        started = self.batch.started
        interval = self.service.settings.flush_interval_s
        self.assertFalse(self.service._flush_due(self.batch, started))
        self.assertFalse(self.service._flush_due(self.batch, started + interval / 2))
        self.assertTrue(self.service._flush_due(self.batch, started + interval + 1e-3))
        # Written together, the sessions are those of the readings.
        self.flush()
        first, second = self.sessions()
        self.assertEqual((first.start_ts, first.end_ts), (T0 + 10, T0 + 30))
        self.assertEqual((second.start_ts, second.state), (T0 + 50, "running"))
        self.assertEqual(sorted(self.client.acked), list(range(1, len(PATTERN) + 1)))

    def test_a_full_batch_is_written_at_once(self):
        self.service.settings.max_batch = 3
        self.frame(T0, 0.0)
        self.frame(T0 + 1, 0.0)
        self.assertFalse(self.service._flush_due(self.batch, self.batch.started))
        self.frame(T0 + 2, 0.0)
        self.assertTrue(self.service._flush_due(self.batch, self.batch.started))

    def test_a_change_without_a_message_is_written_at_once(self):
        now = time.monotonic()
        self.assertFalse(self.service._flush_due(Batch(), now))
        state_only = Batch()
        state_only.dirty.add(self.device.id)
        self.assertTrue(self.service._flush_due(state_only, now))
        timed_out = Batch()
        timed_out.session_work(self.device.id, self.device.name, 7).ops.append(
            CloseSession(SessionSummary(T0, T0 + 60, 10.0, 50.0, 2.0, "timeout"))
        )
        self.assertTrue(self.service._flush_due(timed_out, now))
