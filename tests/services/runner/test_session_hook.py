# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The session lifecycle's hook, ``mqtt.session._on_sessions_closed``: once
per closed session on every path (the runner's writer, a person's stop,
archiving, a recompute with its changes), and a hook that raises changes
nothing of the flush, the acknowledgements or the machine.  The runner path
through a real server process: tests/e2e/test_session_hook.py."""

import time
from contextlib import suppress
from unittest.mock import patch

import psycopg2.errors
import pytest

from odoo import SUPERUSER_ID, api, sql_db
from odoo.tests import tagged

from ....models import mqtt_session_recompute
from ....models.mqtt_session_lifecycle import SUMMARY_FIELDS
from ....services.engine.timebase import to_utc
from ...common import trap_closed_sessions
from .common import T0, RunnerCase

CYCLE = [(0, 0.0), (10, 500.0), (20, 520.0), (30, 1.0), (50, 600.0), (55, 610.0)]


def raising_for(device_id):
    """A hook override that fails for one machine's sessions."""
    Session = None

    def hook(self, origin, changes=()):
        if device_id in self.mapped("device_id").ids:
            raise RuntimeError("a reacting addon's bug")
        return Session(self, origin, changes)

    def install(env):
        nonlocal Session
        cls = type(env["mqtt.session"])
        Session = cls._on_sessions_closed
        return patch.object(cls, "_on_sessions_closed", hook)

    return install


@tagged("post_install", "-at_install")
class TestTheHookOnEveryPath(RunnerCase):
    def play(self, pattern, prefix=None, t0=T0):
        for dt, watts in pattern:
            self.frame(t0 + dt, watts, prefix=prefix)

    def test_the_runner_closes_each_session_once(self):
        with trap_closed_sessions(self.env) as trap:
            self.play(CYCLE)
            self.flush()
            # A session opened and closed in one batch, and one closed later.
            self.play([(60, 0.0), (75, 0.0), (90, 700.0), (100, 700.0), (105, 0.0)])
            self.play([(115, 0.0), (125, 0.0)])
            self.flush()
        first, second, third = self.sessions()
        trap.assert_closed(first | second | third, "runner")
        # One call per flush, for all the sessions it closed.
        self.assertEqual(
            [sorted(sids) for _origin, sids, _c in trap.calls],
            [first.ids, sorted((second | third).ids)],
        )
        self.assertEqual(trap.changes(), [])
        self.assertEqual(
            [s.end_reason for s in trap.closed("runner")], ["power_drop"] * 3
        )

    def test_a_person_stopping_and_archiving_close_it_once(self):
        self.play(CYCLE[:3])
        self.flush()
        running = self.device.running_session_id
        with trap_closed_sessions(self.env) as trap:
            self.device.with_user(self.user).action_stop_session()
        trap.assert_closed(running, "manual")
        self.assertEqual(running.end_reason, "manual")
        self.device.with_user(self.user).action_start_session()
        by_hand = self.device.running_session_id
        with trap_closed_sessions(self.env) as trap:
            self.device.with_user(self.manager).write({"active": False})
        trap.assert_closed(by_hand, "manual")
        self.assertEqual(len(trap.calls), 1)

    @pytest.mark.log_exceptions
    def test_a_raising_hook_leaves_the_flush_acks_and_machine_untouched(self):
        with (
            raising_for(self.device.id)(self.env),
            trap_closed_sessions(self.env) as trap,
        ):
            self.play(CYCLE)
            self.play(CYCLE, prefix=self.other.topic_prefix)
            self.flush()
        # Both machines' sessions are written exactly as without the hook.
        for device in (self.device, self.other):
            first, second = self.sessions(device)
            self.assertEqual((first.state, first.end_ts), ("closed", T0 + 30))
            self.assertEqual(second.state, "running")
        self.assertEqual(self.client.acked, list(range(1, 2 * len(CYCLE) + 1)))
        self.assertFalse(self.device.fault)
        self.assertIn(self.device.id, self.service.engine.devices)
        self.assertEqual(len(self.raw_rows(self.device, "reading")), len(CYCLE))
        # The other machine's reaction ran; this one's is kept and counted.
        trap.assert_closed(self.sessions(self.other)[0], "runner")
        failure = self.env["mqtt.session.hook.failure"].search([])
        self.assertEqual(failure.session_ids, self.sessions()[0])
        self.assertEqual(failure.origin, "runner")
        self.assertIn("a reacting addon's bug", failure.error)
        # Once the addon is fixed, the cron's retry runs it through.
        with trap_closed_sessions(self.env) as trap:
            self.env["mqtt.session.hook.failure"]._retry_hook_failures()
        trap.assert_closed(self.sessions()[0], "runner")
        self.assertFalse(failure.exists())

    @pytest.mark.log_exceptions
    def test_a_hook_raising_on_a_persons_stop_does_not_stop_the_stop(self):
        self.play(CYCLE[:3])
        self.flush()
        running = self.device.running_session_id
        with raising_for(self.device.id)(self.env):
            self.device.with_user(self.user).action_stop_session()
        self.assertEqual(running.state, "closed")
        self.assertEqual(
            self.env["mqtt.session.hook.failure"].search([]).session_ids, running
        )

    def test_a_failing_write_before_the_hook_is_the_callers(self):
        # Archiving machines while the runner writes them can deadlock: that
        # failure must reach the caller (which retries), not be kept as the
        # hook's with the transaction left aborted.
        self.play(CYCLE[:3])
        self.flush()
        running = self.device.running_session_id
        deadlock = psycopg2.errors.DeadlockDetected("deadlock detected")
        with self.assertRaises(psycopg2.errors.DeadlockDetected):
            with patch.object(type(self.env.cr), "flush", side_effect=deadlock):
                self.device.write({"active": False})
        self.assertFalse(self.env["mqtt.session.hook.failure"].search([]))
        self.assertTrue(running.exists())

    @pytest.mark.log_exceptions  # Odoo logs the failed SAVEPOINT ("bad query")
    def test_a_connection_lost_in_the_hook_is_the_callers(self):
        # pg_terminate_backend, a failover: the transaction is gone with the
        # close, so the error must reach the caller (the runner writes the
        # batch again), not be logged and kept as the hook's failure.
        cr = sql_db.db_connect(self.env.cr.dbname).cursor()

        def close():
            with suppress(psycopg2.InterfaceError):  # its rollback: no connection
                cr.close()

        self.addCleanup(close)
        cr.execute("SELECT pg_backend_pid()")
        pid = cr.fetchone()[0]
        self.env.cr.execute("SELECT pg_terminate_backend(%s)", (pid,))
        self.assertTrue(self.env.cr.fetchone()[0])
        # The statistics are a snapshot per transaction: cleared each time.
        gone = (
            "SELECT pg_stat_clear_snapshot(), count(*) FROM pg_stat_activity "
            "WHERE pid = %s"
        )
        deadline = time.monotonic() + 10
        while self.env.cr.execute(gone, (pid,)) or self.env.cr.fetchone()[1]:
            self.assertLess(time.monotonic(), deadline, "the backend stays")
            time.sleep(0.02)
        lost = api.Environment(cr, SUPERUSER_ID, {})["mqtt.session"]
        with self.assertRaises(psycopg2.Error) as caught:
            lost.browse()._call_hook("runner", ())
        self.assertIsInstance(
            caught.exception, (psycopg2.OperationalError, psycopg2.InterfaceError)
        )
        # The same errors on a sound connection are the hook's own.
        for error in (
            psycopg2.errors.LockNotAvailable("could not obtain lock"),
            psycopg2.errors.QueryCanceled("canceling statement"),
        ):
            with patch.object(
                type(self.env["mqtt.session"]), "_on_sessions_closed", side_effect=error
            ):
                self.assertIs(self.env["mqtt.session"]._call_hook("runner", ()), error)
        with patch.object(
            type(self.env["mqtt.session"]),
            "_on_sessions_closed",
            side_effect=psycopg2.InterfaceError("cursor already closed"),
        ):
            with self.assertRaises(psycopg2.InterfaceError):
                self.env["mqtt.session"]._call_hook("runner", ())
        self.assertFalse(self.env["mqtt.session.hook.failure"].search([]))

    def test_a_recompute_tells_what_it_changed(self):
        # Two sessions split by a 20 s dip; a 30 s stop delay joins them.
        watts = {
            **dict.fromkeys(range(10, 40, 5), 500.0),
            **dict.fromkeys(range(60, 90, 5), 500.0),
        }
        self.play([(t, watts.get(t, 0.0)) for t in range(0, 200, 5)])
        self.flush()
        first, second = self.sessions()
        before = {name: first[name] for name in SUMMARY_FIELDS}
        params = {name: self.device[name] for name in mqtt_session_recompute.PARAMS}
        params["stop_debounce_s"] = 30.0
        wizard = self.env["mqtt.session.recompute"].create(
            dict(
                params,
                device_ids=[(6, 0, self.device.ids)],
                date_from=to_utc(T0 - 60),
                date_to=to_utc(T0 + 300),
            )
        )
        with trap_closed_sessions(self.env) as trap:
            wizard.action_apply()
        (joined,) = self.sessions()
        self.assertEqual(joined, first)
        trap.assert_closed(joined, "recompute")
        kinds = {c.kind: c for c in trap.changes()}
        self.assertEqual(set(kinds), {"changed", "removed"})
        self.assertEqual(kinds["changed"].before, before)
        self.assertEqual(kinds["changed"].after["end_ts"], T0 + 90)
        self.assertEqual(kinds["removed"].session_id, second.id)
        self.assertEqual(kinds["removed"].after, None)
        self.assertEqual(kinds["removed"].before["start_ts"], T0 + 60)

    def test_the_example_addon_hears_them(self):
        """tests/addons/owm_session_hook_example, installed with the addon
        in the test database (run-tests.sh), keeps a row per closed session."""
        Example = self.env["owm.session.hook.example"]
        self.play(CYCLE)
        self.flush()
        closed = self.sessions()[0]
        (row,) = Example.search([("session_id", "=", closed.id)])
        self.assertEqual((row.origin, row.changes), ("runner", 0))
        self.assertAlmostEqual(row.working_hours, closed.working_hours)
