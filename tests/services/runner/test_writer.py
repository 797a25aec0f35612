# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The batch writer through the runner's own code path: DatabaseRunner.flusher.flush
opens ``Registry(db).cursor()``, which test mode turns into a cursor on this
test's transaction.  No threads, no broker: messages are handed in directly."""

import json
import random

from odoo.tests import tagged

from ....services.engine.batch import LiveRow, OpenSession, RawRow, UpdateSession
from ....services.engine.timebase import to_utc
from ....services.engine.types import SessionSummary
from ....services.mqtt.inbound import InboundMessage
from ....services.runner import writer
from ....services.runner.config import load_devices
from ....services.runner.writer import LostOwnership, write_batch
from .common import T0, RunnerCase


@tagged("post_install", "-at_install")
class TestFlushWriter(RunnerCase):
    def test_one_batch_closes_a_session_and_opens_the_next(self):
        steps = [(0, 0.0), (10, 500.0), (20, 50.0), (30, 1.0), (50, 600.0), (60, 700.0)]
        for dt, watts in steps:
            self.frame(T0 + dt, watts)
        self.flush()
        first, second = self.sessions()
        self.assertEqual((first.start_ts, first.end_ts), (T0 + 10, T0 + 30))
        self.assertEqual(first.state, "closed")
        self.assertEqual(first.end_reason, "power_drop")
        self.assertAlmostEqual(first.working_duration_s, 10.0)
        self.assertAlmostEqual(first.standby_duration_s, 10.0)
        self.assertAlmostEqual(first.energy_wh, (500 * 10 + 50 * 10) / 3600)
        self.assertEqual(second.state, "running")
        self.assertEqual(second.start_ts, T0 + 50)
        self.assertAlmostEqual(second.working_duration_s, 10.0)
        self.assertEqual(self.device.running_session_id, second)
        self.assertEqual(self.device.current_state, "working")
        self.assertEqual(self.device.current_power_w, 700.0)
        self.assertTrue(self.device.online)
        self.assertEqual(self.device.detector_snapshot["state"], "working")
        self.assertEqual(self.device.parser_snapshot["status"]["apower"], 700.0)
        # Every message acknowledged after the commit, logged once, counted once.
        self.assertEqual(self.client.acked, list(range(1, 7)))
        logged = self.env["mqtt.message"].search([("device_id", "=", self.device.id)])
        self.assertEqual(
            sorted(logged.mapped("device_ts")), [T0 + dt for dt, _ in steps]
        )
        self.assertEqual(self.connection.stat_received, 6)
        self.assertEqual(self.connection.stat_readings, 6)
        self.assertEqual(self.connection.state, "connected")
        self.assertTrue(self.connection.heartbeat)
        self.assertEqual(json.loads(self.connection.committed_mids), list(range(1, 7)))
        # The live board hears about it (the bus row is written with the commit).
        self.assertTrue(
            self.env["bus.bus"].search_count(
                [("channel", "like", "open_workshop_mqtt.group_user")]
            )
            or self.env["bus.bus"].search_count(
                [("message", "like", "open_workshop_mqtt/devices")]
            )
        )

    def test_a_redelivered_start_does_not_duplicate_the_session(self):
        self.frame(T0, 500.0)
        self.frame(T0 + 5, 500.0)
        self.flush()
        session = self.sessions()
        self.assertEqual(len(session), 1)
        # Lose the runner's memory of it (as after a crash before the commit
        # of the device row): the same start comes again.
        self.service.engine.devices[self.device.id].session_id = None
        ops = self.batch.session_work(self.device.id, self.device.name, None).ops
        ops.append(OpenSession(T0, False))
        # Its progress in the same batch is written to the one found.
        ops.append(UpdateSession(SessionSummary(T0, None, 0.0, 9.0, 1.25, None)))
        self.flush()
        self.assertEqual(self.sessions(), session)
        self.assertEqual(session.state, "running")
        self.assertEqual(session.working_duration_s, 9.0)
        self.assertEqual(session.energy_wh, 1.25)

    def test_a_start_by_hand_after_a_session_that_ended_unseen(self):
        """The meter fell silent while the machine was starting, and a person
        starts a session a minute later: the runner's catch-up opens and closes
        the machine's own session (timeout), and the person's stays running."""
        self.frame(T0, 900.0)
        self.flush()
        self.device.action_start_session()
        person = self.device.running_session_id
        person.write({"start_ts": T0 + 60, "start_time": to_utc(T0 + 60)})
        for cfg in load_devices(self.env, [self.connection.id]):
            self.service.engine.upsert_device(cfg, self.batch)
        self.flush()
        (auto,) = self.sessions() - person
        self.assertEqual(
            (auto.start_ts, auto.state, auto.end_reason), (T0, "closed", "timeout")
        )
        self.assertEqual(person.state, "running")
        self.assertEqual(self.device.running_session_id, person)
        self.assertEqual(
            self.service.engine.devices[self.device.id].session_id, person.id
        )

    def test_a_session_closed_by_hand_is_not_reopened(self):
        self.frame(T0, 500.0)
        self.frame(T0 + 5, 500.0)
        self.flush()
        session = self.sessions()
        session.action_stop()
        self.assertEqual(session.end_reason, "manual")
        end = session.end_ts
        self.frame(T0 + 10, 520.0)
        # The runner still holds it open and writes its progress: refused.
        self.service.engine.devices[self.device.id].progress_due = True
        self.flush()
        self.assertEqual(session.state, "closed")
        self.assertEqual(session.end_ts, end)
        self.assertEqual(session.end_reason, "manual")

    def test_a_batch_of_a_taken_over_connection_never_lands(self):
        self.frame(T0, 500.0)
        self.connection.runner_token = "another-runner"
        self.env.flush_all()
        self.service.engine.seal(self.batch)
        self.batch.connections = self.service.flusher.connection_rows(self.batch)
        with self.assertRaises(LostOwnership), self.cr.savepoint():
            write_batch(self.env, self.batch)
        self.assertFalse(self.env["mqtt.message"].search_count([]))
        # Through the runner: the connection is released, nothing written or acked.
        self.flush()
        self.assertNotIn(self.connection.id, self.service.owned)
        self.assertEqual(self.client.acked, [])
        self.assertFalse(self.env["mqtt.message"].search_count([]))

    def test_discovered_meters_wait_for_confirmation(self):
        self.frame(T0, 40.0, prefix="shellypmminig3-ffeeddccbbaa")
        self.frame(T0 + 1, 41.0, prefix="shellypmminig3-ffeeddccbbaa")
        self.flush()
        found = (
            self.env["mqtt.device"]
            .with_context(active_test=False)
            .search([("topic_prefix", "=", "shellypmminig3-ffeeddccbbaa")])
        )
        self.assertEqual(len(found), 1)
        self.assertFalse(found.active)
        self.assertEqual(found.discovery_state, "discovered")
        self.assertEqual(found.name, "shellypmminig3-ffeeddccbbaa")
        self.assertEqual(self.connection.stat_unmatched, 2)
        unmatched = self.env["mqtt.message"].search([("status", "=", "unmatched")])
        self.assertEqual(len(unmatched), 1)


@tagged("post_install", "-at_install")
class TestStamp(RunnerCase):
    def test_a_timestamp_reads_as_the_datetime_odoo_stores(self):
        rng = random.Random(7)
        times = [T0, T0 + 0.5, T0 + 0.9999995, T0 + 0.0000005, T0 + 0.0000015]
        times += [T0 + 1.999999, 0.0, 1e9 + 0.25, 4102444800.123456]
        times += [T0 + rng.uniform(0, 86400 * 400) for _ in range(20000)]
        times += [round(t, 6) + 5e-7 for t in times[-2000:]]  # ties, near enough
        for ts in times + sorted(times):  # the second's text cached, or not
            self.assertEqual(writer._stamp(ts), to_utc(ts).isoformat(sep=" "), ts)
        self.assertEqual(writer._stamp(None), "\\N")
        self.assertEqual(writer._stamp(-1.25), to_utc(-1.25).isoformat(sep=" "))


class TestCopyText(RunnerCase):
    """The raw log and the live rows go in by COPY's text format, escaped by
    hand: every character arrives as it was sent."""

    ODD = 'tab\there\nnew line\rreturn back\\slash "quoted", comma \\N end'

    def test_a_raw_row_keeps_every_character(self):
        payload = (self.ODD + "\x00nul").encode() + b"\xff"
        topic = "owm/odd\ttopic\\with/slash"
        msg = InboundMessage(topic, payload, 1, 99, False, False, T0, 1)
        row = RawRow(
            self.connection.id, self.device.id, None, msg, "rejected", self.ODD, T0, 1.5
        )
        writer._insert_raw(self.env, [row])
        (logged,) = self.env["mqtt.message"].search([("topic", "=", topic)])
        self.assertEqual(logged.payload, self.ODD + "\ufffdnul\ufffd")
        self.assertEqual(logged.payload_size, len(payload))
        self.assertEqual(logged.detail, self.ODD[:250])
        self.assertEqual((logged.device_ts, logged.power_w), (T0, 1.5))
        self.assertEqual(logged.device_id, self.device)
        self.assertFalse(logged.company_id)

    def test_a_live_row_keeps_every_character(self):
        snapshot = {"odd": self.ODD, "n": 1.25, "none": None}
        row = LiveRow(
            self.device.id,
            "working",
            712.5,
            None,
            T0,
            True,
            self.ODD,
            False,
            None,
            snapshot,
            {"status": {"note": self.ODD}},
            "id\twith\\tab",
            None,
            b"\x00\\\t\n",
            True,
        )
        writer._write_live(self.env.cr, [row], {})
        self.env.invalidate_all()
        device = self.device
        self.assertEqual(device.meter_error, self.ODD)
        self.assertEqual(device.detector_snapshot, snapshot)
        self.assertEqual(device.parser_snapshot, {"status": {"note": self.ODD}})
        self.assertEqual(device.shelly_id, "id\twith\\tab")
        self.assertEqual(device.current_power_w, 712.5)
        self.assertEqual(bytes(device._history_tail()), b"\x00\\\t\n")
        self.assertEqual(device.last_message_time, to_utc(T0))
