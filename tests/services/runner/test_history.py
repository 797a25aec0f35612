# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The power history through the runner's writer: the tail on the machine,
the sealed chunks, a restart continuing the tail, nothing kept twice."""

from unittest.mock import patch

from odoo.tests import tagged

from ....services.engine import history
from ....services.engine.batch import Batch
from ....services.runner import flush, writer
from ....services.runner.config import load_devices
from .common import T0, RunnerCase


@tagged("post_install", "-at_install")
class TestHistoryWriter(RunnerCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Frames come faster than a meter's cap here (a replayed day).
        cls.device.max_msg_rate = 100_000

    def stored_records(self, device=None):
        device = device or self.device
        records = []
        for run in device._history_runs():
            records.extend(r for r in run if r.kind != history.SNAP)
        return records

    def test_every_accepted_reading_is_kept_once(self):
        steps = [(0, 0.0), (10, 500.0), (20, 520.5), (30, 1.0)]
        for dt, watts in steps:
            self.frame(T0 + dt, watts)
        self.frame(T0 + 20, 999.0)  # a stale copy: not an input, not kept
        self.flush()
        got = [(r.ts, r.power_w) for r in self.stored_records()]
        self.assertEqual(got, [(T0 + dt, w) for dt, w in steps])
        # A redelivery after the commit adds nothing either.
        self.frame(T0 + 30, 1.0)
        self.flush()
        self.assertEqual(len(self.stored_records()), len(steps))

    def test_machines_written_apart_keep_their_readings_once(self):
        # After a failure no policy explains, each machine's part is written
        # under its own savepoint: no machine's live row (and history) is
        # applied again with the next machine's.
        def apart(env, batch, isolate=False, known=()):
            return writer.write_batch(env, batch, isolate=True, known=known)

        steps = [(0, 0.0), (10, 500.0), (20, 520.5), (30, 1.0)]
        with patch.object(flush, "write_batch", apart):
            for dt, watts in steps:
                self.frame(T0 + dt, watts)
                self.frame(T0 + dt, watts + 1, prefix=self.other.topic_prefix)
            self.flush()
        mine = [(r.ts, r.power_w) for r in self.stored_records()]
        self.assertEqual(mine, [(T0 + dt, w) for dt, w in steps])
        other = [(r.ts, r.power_w) for r in self.stored_records(self.other)]
        self.assertEqual(other, [(T0 + dt, w + 1) for dt, w in steps])
        self.assertEqual(self.device.current_power_w, 1.0)
        self.assertEqual(self.other.current_power_w, 2.0)

    def test_the_tail_seals_into_chunks_and_a_restart_continues_it(self):
        for n in range(1500):
            self.frame(T0 + n, 0.0 if (n // 40) % 3 == 0 else 100.0 + (n % 17) * 25.5)
            if n % 100 == 99:
                self.flush()
        self.flush()
        chunks = self.device._history_chunks()
        self.assertGreater(len(chunks), 2)
        self.assertTrue(self.device._history_tail())
        # A restart: a new engine from what the database holds.
        self.service.engine.remove_connection(self.connection.id)
        engine = self.service.engine
        engine.add_connection(self.connection.id, "owm-test", discovery=True)
        engine.connection_up(self.connection.id, session_present=False)
        self.batch = Batch()
        # As the runner's reconcile reads them: the stored state where needed.
        for cfg in load_devices(self.env, [self.connection.id], engine.needs_state):
            engine.upsert_device(cfg, self.batch)
        for n in range(1500, 1600):
            self.frame(T0 + n, 300.0)
        self.flush()
        records = self.stored_records()
        self.assertEqual([r.ts for r in records], [T0 + n for n in range(1600)])
        # Replayed, it gives back the stored sessions.
        machine, closed = history.replay_runs(
            self.device._history_runs(), self.device._detector_config()
        )
        stored = self.sessions().filtered(lambda s: s.state == "closed")
        self.assertGreater(len(stored), 10)
        self.assertEqual(
            [(s.summary.start_time, s.summary.end_time) for s in closed],
            [(s.start_ts, s.end_ts) for s in stored],
        )
        running = self.sessions().filtered(lambda s: s.state == "running")
        self.assertEqual(machine.session.start_time, running.start_ts)

    def test_a_reconcile_reads_the_stored_state_only_for_machines_built_anew(self):
        for n in range(60):
            self.frame(T0 + n, 0.0 if n < 20 else 300.0)
            self.frame(T0 + n, 50.0 + n, prefix=self.other.topic_prefix)
        self.flush()
        ids = [self.connection.id]
        full = {c.id: c for c in load_devices(self.env, ids)}
        for cfg in full.values():
            self.assertTrue(cfg.detector_snapshot)
            self.assertTrue(cfg.parser_snapshot)
            self.assertTrue(cfg.history_tail)
        stored = full[self.device.id]
        engine = self.service.engine
        held = {c.id: c for c in load_devices(self.env, ids, engine.needs_state)}
        # The machines the engine holds go on from their own state.
        for cfg in held.values():
            self.assertEqual(
                (cfg.detector_snapshot, cfg.parser_snapshot, cfg.history_tail),
                (None, None, None),
            )
        self.assertEqual(held[self.device.id], stored)  # the configuration
        # Given another meter, the machine's parser is built anew: from the
        # stored state, as a machine new to the engine is.
        self.device.topic_prefix = "shellypmminig3-0000000000ee"
        engine.remove_device(self.other.id, self.batch)
        anew = {c.id: c for c in load_devices(self.env, ids, engine.needs_state)}
        for dev_id in (self.device.id, self.other.id):
            self.assertEqual(
                (
                    anew[dev_id].detector_snapshot,
                    anew[dev_id].parser_snapshot,
                    anew[dev_id].history_tail,
                ),
                (
                    full[dev_id].detector_snapshot,
                    full[dev_id].parser_snapshot,
                    full[dev_id].history_tail,
                ),
            )
        # And the machine removed goes on from it: its history continues.
        engine.upsert_device(anew[self.other.id], self.batch)
        for n in range(60, 70):
            self.frame(T0 + n, 50.0 + n, prefix=self.other.topic_prefix)
        self.flush()
        self.assertEqual(
            [r.ts for r in self.stored_records(self.other)],
            [T0 + n for n in range(70)],
        )

    def test_a_machine_without_history_keeps_none(self):
        self.service.engine.fleet.history = False
        other = self.make_device("Drill", "shellypmminig3-0000000000dd")
        cfg = load_devices(self.env, [self.connection.id])
        self.service.engine.upsert_device(
            next(c for c in cfg if c.id == other.id), self.batch
        )
        self.frame(T0, 500.0, prefix=other.topic_prefix)
        self.flush()
        self.assertFalse(other._history_tail())
        self.assertTrue(self.env["mqtt.device"].browse(other.id).current_power_w)
