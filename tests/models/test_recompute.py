# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Recomputing sessions from the power history the runner stored, the power
curve, retention.  The history is written by the runner's own engine and
writer (tests/services/runner/common.py)."""

from unittest.mock import patch

from odoo.exceptions import AccessError
from odoo.tests import tagged

from ...models import mqtt_session_recompute
from ...services.engine.timebase import to_utc
from ..services.runner.common import T0, RunnerCase

# A machine's cycle of 350 s: on 60 s at 500 W, a 10 s dip (shorter than the
# 15 s stop delay: one session), on 60 s, then off: 100 s at 0 W, 30 s at
# 15 W (below the 20 W standby threshold), 90 s at 0 W.  A shorter stop delay
# splits each session at the dip; a lower standby threshold finds the 15 W.
PATTERN = [(60, 500.0), (10, 0.0), (60, 500.0), (100, 0.0), (30, 15.0), (90, 0.0)]


@tagged("post_install", "-at_install")
class TestRecompute(RunnerCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.device.max_msg_rate = 100_000

    def play(self, seconds, t0=T0, flush_every=200):
        t, n = t0, 0
        while t < t0 + seconds:
            for length, watts in PATTERN:
                for _ in range(length):
                    self.frame(t, watts)
                    t += 1.0
                    n += 1
                    if n % flush_every == 0:
                        self.flush()
        self.flush()
        return t

    def wizard(self, **values):
        params = {name: self.device[name] for name in mqtt_session_recompute.PARAMS}
        params.update(values)
        return self.env["mqtt.session.recompute"].create(
            dict(
                params,
                device_ids=[(6, 0, self.device.ids)],
                date_from=to_utc(T0),
                date_to=to_utc(T0 + 7200),
            )
        )

    def kinds(self, wizard):
        return sorted(wizard.line_ids.mapped("kind"))

    def test_unchanged_settings_give_back_the_stored_sessions(self):
        self.play(7200)
        stored = self.sessions()
        self.assertGreater(len(stored), 15)
        wizard = self.wizard()
        wizard.action_preview()
        machine = wizard.machine_ids
        self.assertEqual(machine.changed + machine.appearing + machine.vanishing, 0)
        in_window = stored.filtered(lambda s: s.start_ts < T0 + 7200)
        self.assertEqual(machine.kept, len(in_window))
        self.assertEqual(set(self.kinds(wizard)), {"same"})
        self.assertEqual(machine.sessions_before, machine.sessions_after)
        self.assertAlmostEqual(machine.energy_kwh_before, machine.energy_kwh_after)

    def test_a_lower_standby_threshold_finds_new_sessions(self):
        self.play(7200)
        wizard = self.wizard(standby_threshold_w=10.0, working_threshold_w=100.0)
        wizard.action_preview()
        self.assertEqual(set(self.kinds(wizard)), {"same", "appear"})
        appeared = wizard.line_ids.filtered(lambda line: line.kind == "appear")
        # The 15 W stretches (350 s cycles, 230 s in) are standby sessions now.
        in_window = [k for k in range(30) if k * 350 + 230 < 7200]
        self.assertEqual(len(appeared), len(in_window))
        first = appeared[0]
        self.assertAlmostEqual(first.after_end_ts - first.after_start_ts, 30.0)
        self.assertAlmostEqual(first.after_standby_s, 30.0)
        self.assertGreater(
            wizard.machine_ids.standby_h_after, wizard.machine_ids.standby_h_before
        )

    def test_apply_splits_sessions_in_place_and_leaves_an_audit_trail(self):
        self.play(7200)
        before = self.sessions()
        wizard = self.wizard(stop_debounce_s=5.0, write_params=True)
        wizard.action_preview()
        self.assertEqual(set(self.kinds(wizard)), {"change", "appear"})
        changed = wizard.line_ids.filtered(lambda line: line.kind == "change")
        changed_ids, count = changed.session_id.ids, len(changed)
        wizard.action_apply()
        after = self.sessions()
        self.assertEqual(len(after), len(before) + count)
        self.assertTrue(set(changed_ids) <= set(after.ids))  # in place
        first = self.env["mqtt.session"].browse(changed_ids[0])
        self.assertEqual((first.start_ts, first.end_ts), (T0, T0 + 60))
        self.assertEqual(self.device.stop_debounce_s, 5.0)
        log = self.device.recompute_log_ids
        self.assertEqual(len(log), 1)
        self.assertEqual(log.user_id, self.env.user)
        self.assertEqual(log.old_params["stop_debounce_s"], 15.0)
        self.assertEqual(log.new_params["stop_debounce_s"], 5.0)
        counts = (log.changed, log.created, log.removed)
        self.assertEqual(counts, (count, count, 0))
        self.assertTrue(log.params_written)
        self.assertIn("stop 15 -> 5 s", log.params_text)
        for session in after.filtered(lambda s: s.state == "closed"):
            self.assertAlmostEqual(
                session.standby_duration_s + session.working_duration_s,
                session.end_ts - session.start_ts,
                places=6,
            )

    def test_sessions_vanish_when_nothing_reaches_the_thresholds(self):
        self.play(3600)
        wizard = self.wizard(standby_threshold_w=600.0, working_threshold_w=700.0)
        wizard.action_apply()
        self.assertEqual(set(self.kinds(wizard)), {"vanish"})
        self.assertFalse(self.sessions().filtered(lambda s: s.start_ts < T0 + 7200))
        self.assertEqual(self.device.standby_threshold_w, 20.0)  # not written

    def test_apply_while_the_machine_runs_leaves_its_session_running(self):
        """The running session, and whatever a replay would merge into it, is
        the runner's: apply leaves it, and the runner goes on with it."""
        t = self.play(3600)
        for _ in range(30):
            self.frame(t, 600.0)  # the machine is working now
            t += 1.0
        self.flush()
        running = self.device.running_session_id
        self.assertTrue(running)
        start, energy = running.start_ts, running.energy_wh
        wizard = self.wizard(stop_debounce_s=250.0)
        wizard.date_to = to_utc(t + 3600)
        wizard.action_apply()
        self.assertEqual(self.device.running_session_id, running)
        self.assertEqual((running.state, running.start_ts), ("running", start))
        self.assertEqual(running.energy_wh, energy)
        reasons = wizard.line_ids.filtered(
            lambda line: line.kind == "left_alone"
        ).mapped("note")
        self.assertIn("open", reasons)
        # The runner goes on with the same session.
        for _ in range(10):
            self.frame(t, 600.0)
            t += 1.0
        self.service.engine.devices[self.device.id].progress_due = True
        self.flush()
        self.assertEqual(self.device.running_session_id, running)
        self.assertGreater(running.working_duration_s, 30.0)

    def test_a_manual_session_stays_and_nothing_is_written_over_it(self):
        self.play(1800)
        # A person's session while the machine drew 15 W (T0 + 230 to + 260),
        # below the standby threshold: no automatic session there.
        manual = self.make_session(
            self.device,
            T0 + 225,
            end_ts=T0 + 270,
            state="closed",
            origin="manual",
            end_reason="manual",
            standby_duration_s=45.0,
        )
        wizard = self.wizard(standby_threshold_w=10.0)  # would find one there
        wizard.action_apply()
        self.assertTrue(manual.exists())
        self.assertEqual((manual.start_ts, manual.end_ts), (T0 + 225, T0 + 270))
        left = wizard.line_ids.filtered(lambda line: line.kind == "left_alone")
        self.assertEqual(left.mapped("note"), ["manual"])
        self.assertEqual(left.after_start_ts, T0 + 230)
        overlapping = self.sessions().filtered(
            lambda s: s.start_ts < T0 + 270 and s.end_ts > T0 + 225
        )
        self.assertEqual(overlapping, manual)

    def test_a_long_history_is_replayed_in_steps(self):
        self.play(7200)
        wizard = self.wizard()
        with patch.object(mqtt_session_recompute, "STEP_RECORDS", 1000):
            progress = []
            while True:
                step = wizard.action_preview_step()
                progress.append(step["progress"])
                if step["done"]:
                    break
        self.assertGreater(len(progress), 4)
        self.assertEqual(progress, sorted(progress))
        self.assertEqual(progress[-1], 100.0)
        self.assertEqual(wizard.state, "preview")
        self.assertEqual(set(self.kinds(wizard)), {"same"})

    def test_only_managers_recompute(self):
        with self.assertRaises(AccessError):
            self.env["mqtt.session.recompute"].with_user(self.user).create(
                {"device_ids": [(6, 0, self.device.ids)]}
            )

    def test_the_power_curve_of_a_session(self):
        self.play(600)
        session = self.sessions()[0]
        curve = session.with_user(self.user).get_power_curve()
        self.assertFalse(curve["empty"])
        self.assertEqual((curve["standby_w"], curve["working_w"]), (20.0, 100.0))
        powers = {p for _t, p in curve["points"]}
        # Before the first reading (the margin reaches back before it) there
        # is no data: the line starts at that reading.
        self.assertEqual(powers, {None, 0.0, 500.0})
        (before,) = [s for s in curve["spans"] if s[2] == "nodata"]
        self.assertEqual(before[1], T0 * 1000)
        states = {span[2] for span in curve["spans"]}
        # Its 10 s dip is the stop delay running: shaded as such.
        self.assertEqual(states, {"working", "stopping", "nodata"})
        self.assertEqual(curve["stop_delay_s"], 15.0)
        self.assertEqual(
            curve["session"], [session.start_ts * 1000.0, session.end_ts * 1000.0]
        )
        self.assertLessEqual(len(curve["points"]), 2 * 800 + 2)

    def test_the_power_curve_breaks_where_there_is_no_data(self):
        """A meter silent past the silence timeout, and one offline: no line
        is drawn there, a "nodata" span is shaded instead."""
        for dt in range(0, 60, 5):
            self.frame(T0 + dt, 65.0)
        # Silent for five minutes (the timeout is 20 s), then back.
        for dt in range(360, 420, 5):
            self.frame(T0 + dt, 65.0)
        self.flush()
        curve = self.device._power_curve(T0, T0 + 420)
        gaps = [(a, b) for a, b, state in curve["spans"] if state == "nodata"]
        self.assertEqual(gaps, [((T0 + 75) * 1000, (T0 + 360) * 1000)])
        nulls = [t for t, p in curve["points"] if p is None]
        self.assertEqual(nulls, [(T0 + 75) * 1000])
        drawn = [t for t, p in curve["points"] if p is not None]
        self.assertFalse([t for t in drawn if (T0 + 75) * 1000 < t < (T0 + 360) * 1000])
        # After the last reading, the curve ends where the timeout does.
        later = self.device._power_curve(T0 + 300, T0 + 600)
        tail = [(a, b) for a, b, state in later["spans"] if state == "nodata"]
        self.assertEqual(tail[-1], ((T0 + 435) * 1000, (T0 + 600) * 1000))

    def test_history_past_its_retention_goes(self):
        self.play(7200, flush_every=50)
        chunks = self.env["mqtt.power.chunk"].search(
            [("device_id", "=", self.device.id)]
        )
        self.assertTrue(chunks)
        self.env.company.owm_history_retention_days = 30
        self.assertEqual(self.env["mqtt.power.chunk"]._gc_history(), len(chunks))
        self.assertFalse(chunks.exists())
        self.env.company.owm_history_retention_days = 0
        self.play(600, t0=T0 + 9000)
        self.assertEqual(self.env["mqtt.power.chunk"]._gc_history(), 0)
