# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A session's life, the one seam other addons build on.

Every path that opens, changes, closes or removes a session goes through the
methods here: the runner (``services/runner/detector.py``), a person's start
and stop (the buttons, archiving a machine), and a recompute
(``mqtt.session.recompute``).  Override

* ``_prepare_open_values`` / ``_prepare_summary_values`` to add values of
  your own to a new session or to every write of its times;
* ``_on_sessions_closed(origin, changes)`` to react when sessions close.

The hook runs after the write, in the same transaction, under a savepoint
(the runner's: once per flush, for every session that flush closed):
what it does commits together with the close, exactly once.  When it
raises, the savepoint is rolled back, the failure is logged, counted and
kept (``mqtt.session.hook.failure``, shown to managers), and the close
stands: it never quarantines a machine, loses a reading or blocks a flush.
A database connection lost while it runs is not the hook's failure: the
transaction is gone with the close, and the caller writes both again.
A cron tries failed calls again (``_retry_hook_failures``).  In the runner
the hook holds the machines' writes while it runs: a reaction that takes
longer than a few milliseconds defers its work (a cron it triggers with
``env.ref(...)._trigger()``, a queue_job ``with_delay()``).  Never commit in
it.
"""

import logging
import time
from dataclasses import dataclass

import psycopg2

from odoo import _, api, models
from odoo.exceptions import UserError

from ..services.engine.machine import SessionStateMachine
from ..services.engine.timebase import to_utc
from ..services.engine.types import MANUAL, SessionClosed, SessionSummary

_logger = logging.getLogger(__name__)

# Who closed the sessions a hook call is about.
ORIGIN_RUNNER = "runner"  # the runner, from the meter's readings
ORIGIN_MANUAL = "manual"  # a person: the Stop button, archiving a machine
ORIGIN_RECOMPUTE = "recompute"  # a manager's recompute of past sessions
ORIGINS = (ORIGIN_RUNNER, ORIGIN_MANUAL, ORIGIN_RECOMPUTE)

# What a session's summary values are (before and after a recompute).
SUMMARY_FIELDS = (
    "start_ts",
    "end_ts",
    "standby_duration_s",
    "working_duration_s",
    "energy_wh",
    "end_reason",
)


def _connection_lost(cr, exc):
    """Whether ``exc`` broke the transaction rather than the hook: the cursor
    or its connection is closed (a server restart, a failover,
    ``pg_terminate_backend``).  A lock timeout or a conflict raised in the
    hook leaves the connection open: the savepoint undoes it."""
    if isinstance(exc, psycopg2.InterfaceError):
        return True
    return isinstance(exc, psycopg2.OperationalError) and bool(cr._cnx.closed)


@dataclass(frozen=True)
class SessionChange:
    """What a recompute did to one session: ``before`` and ``after`` its
    summary values (``SUMMARY_FIELDS``); ``before`` is None for a session
    that appeared, ``after`` None for one removed (``session_id`` then names
    a record that no longer exists)."""

    session_id: int
    device_id: int
    before: dict | None
    after: dict | None

    @property
    def kind(self):
        if self.before is None:
            return "appeared"
        return "removed" if self.after is None else "changed"


class MqttSession(models.Model):
    _inherit = "mqtt.session"

    # -- values ------------------------------------------------------------------
    @api.model
    def _prepare_open_values(self, device_id, start_ts, origin, user_id=None):
        """The values of a new session (``origin``: "power" or "manual", who
        started it); override to add your own."""
        return {
            "device_id": device_id,
            "start_ts": start_ts,
            "start_time": to_utc(start_ts),
            "last_update_ts": start_ts,
            "origin": origin,
            "started_by_id": user_id,
        }

    @api.model
    def _prepare_summary_values(self, summary: SessionSummary):
        """The values of a running or closed session the engine summarised;
        every write of a session's times goes through here."""
        vals = {
            "start_ts": summary.start_time,
            "start_time": to_utc(summary.start_time),
            "standby_duration_s": summary.standby_duration_s,
            "working_duration_s": summary.working_duration_s,
            "energy_wh": summary.energy_wh,
            "last_update_ts": summary.start_time + summary.total_duration_s,
        }
        if summary.end_time is not None:
            vals.update(
                state="closed",
                end_ts=summary.end_time,
                end_time=to_utc(summary.end_time),
                end_reason=summary.end_reason,
            )
        return vals

    # -- the lifecycle (every path) -----------------------------------------------
    @api.model
    def _open_session(
        self, device_id, start_ts, origin, summary=None, user_id=None, notify=True
    ):
        """Create a session; with the ``summary`` of a close it is created
        closed (then the hook runs for it, origin "runner"; ``notify=False``:
        the caller runs it, see ``_close_session``)."""
        values = self._prepare_open_values(device_id, start_ts, origin, user_id)
        if summary is not None:
            values.update(self._prepare_summary_values(summary))
        session = self.create(values)
        if notify and summary is not None and summary.end_time is not None:
            session._notify_closed(ORIGIN_RUNNER)
        return session

    def _update_session(self, summary: SessionSummary):
        """Write a running session's progress (durations and energy so far)."""
        self.write(self._summary_write_values(summary))

    def _summary_write_values(self, summary: SessionSummary):
        """``_prepare_summary_values`` for a write of this session, without
        its start when that is the stored one: writing it again would
        recompute what hangs on the start (weekday, hour) at every progress."""
        values = self._prepare_summary_values(summary)
        if self.start_ts == summary.start_time:
            values.pop("start_ts", None)
            values.pop("start_time", None)
        return values

    def _close_session(self, summary: SessionSummary, origin, notify=True, **extra):
        """Close with ``summary`` (``extra``: more values), then the hook.

        ``notify=False``: the caller runs the hook itself, once for all the
        sessions it closed (the runner: once per flush, so the sessions'
        computed fields are computed together and one savepoint serves them)."""
        values = self._summary_write_values(summary)
        values.update(extra)
        self.write(values)
        if notify:
            self._notify_closed(origin)

    def _apply_recompute(self, device_id, changes):
        """A recompute's changes of one machine: ``changes`` is a list of
        (kind, stored session or empty recordset, SessionSummary or None),
        kind "change", "appear" or "vanish".  Writes them, then runs the hook
        once for them (origin "recompute") with their before and after."""
        done = []
        closed = self.browse()
        for kind, stored, summary in changes:
            before = _summary_dict(stored) if stored else None
            if kind == "vanish":
                stored_id = stored.id
                stored.unlink()
                done.append(SessionChange(stored_id, device_id, before, None))
                continue
            if kind == "change":
                stored.write(stored._summary_write_values(summary))
                session = stored
            else:
                values = self._prepare_open_values(
                    device_id, summary.start_time, "power"
                )
                values.update(self._prepare_summary_values(summary))
                session = self.create(values)
            closed |= session
            done.append(
                SessionChange(session.id, device_id, before, _summary_dict(session))
            )
        if done:
            # Its totals followed each write; summed again, they are exact.
            self.env["mqtt.device"].browse(device_id)._recompute_usage()
            closed._notify_closed(ORIGIN_RECOMPUTE, done)
        return done

    # -- the hook -------------------------------------------------------------------
    def _on_sessions_closed(self, origin, changes=()):
        """React to closed sessions: override (and call ``super()``).

        ``self``: the sessions closed, each passed once, after their write
        and in its transaction (for a recompute: those it changed or made).
        ``origin``: "runner", "manual" or "recompute" (``ORIGINS``).
        ``changes``: for a recompute, a ``SessionChange`` per session it
        changed, made or removed, with its values before and after; else
        empty.  See this module's docstring for the guarantees."""

    def _notify_closed(self, origin, changes=()):
        """Run the hook under a savepoint; a failure is kept, never raised.

        Several sessions are tried together, and one by one when that fails,
        so one session's failure does not hold back the others' reactions."""
        if not self and not changes:
            return
        error = self._call_hook(origin, changes)
        if error is None:
            return
        if len(self) <= 1:
            self._hook_failed(origin, changes, error)
            return
        parts = [
            (session, [c for c in changes if c.session_id == session.id])
            for session in self
        ]
        removed = [c for c in changes if c.after is None]
        if removed:
            parts.append((self.browse(), removed))
        for sessions, mine in parts:
            error = sessions._call_hook(origin, mine)
            if error is not None:
                sessions._hook_failed(origin, mine, error)

    def _call_hook(self, origin, changes):
        """Run the hook under a savepoint: None, or the exception it raised
        (its effects then rolled back)."""
        # The writes so far first, outside the guard: when they fail (a
        # deadlock with the runner, a concurrent update) the error is the
        # caller's to retry.  Caught here it would be blamed on the hook and
        # leave the transaction aborted (the savepoint flushes before it is
        # set: found by the benchmark, archiving machines under load).
        self.env.cr.flush()
        try:
            with self.env.cr.savepoint():
                self._on_sessions_closed(origin, tuple(changes))
        except Exception as exc:  # pylint: disable=broad-except
            if _connection_lost(self.env.cr, exc):
                # No savepoint survives a lost connection: the close is gone
                # with the transaction, and the caller writes it again.
                raise
            return exc
        return None

    def _hook_failed(self, origin, changes, error):
        """Log the failure and keep it for managers and the retry."""
        _logger.error(
            "A reaction to closed sessions %s (origin %s) failed: %s; the close "
            "stands, the call is kept to be tried again",
            self.ids,
            origin,
            error,
            exc_info=error,
        )
        self.env["mqtt.session.hook.failure"].sudo()._record(
            self, origin, changes, error
        )

    # -- a person's start and stop --------------------------------------------------
    @api.model
    def _open_manual(self, device):
        """A person's start, now (on the meter's clock)."""
        device = device.sudo()
        if not device.active:
            raise UserError(
                _("%s is archived: it cannot start a session.", device.name)
            )
        if device.running_session_id or self.sudo().search_count(
            [("device_id", "=", device.id), ("state", "=", "running")], limit=1
        ):
            raise UserError(_("%s already has a running session.", device.name))
        session = self.sudo()._open_session(
            device.id, _device_now(device), "manual", user_id=self.env.uid
        )
        device.running_session_id = session
        return session

    def _close_manual(self):
        """Close now, by the engine's own rules: the machine's state machine as
        the runner last stored it is stopped by hand, so the time since the
        runner's last update counts in the machine's current state and its
        energy by the engine's one rule (standby + working == end - start)."""
        self.ensure_one()
        session = self.sudo()
        # Lock the row: the runner may be updating the same session right now.
        self.env.cr.execute(
            "SELECT id FROM mqtt_session WHERE id = %s FOR UPDATE", (session.id,)
        )
        session.invalidate_recordset()
        if session.state != "running":
            raise UserError(_("This session is already closed."))
        device = session.device_id
        last = session.last_update_ts or session.start_ts
        end_ts = max(_device_now(device), last, session.start_ts)
        summary = _closing_summary(device, session, last, end_ts)
        if device.running_session_id == session:
            device.running_session_id = False
        session._close_session(summary, ORIGIN_MANUAL, stopped_by_id=self.env.uid)
        return True


def _summary_dict(session):
    """The ``SUMMARY_FIELDS`` of ``session`` (an empty one as None)."""
    return {
        name: None if session[name] is False else session[name]
        for name in SUMMARY_FIELDS
    }


def _closing_summary(device, session, last, end_ts):
    """The session closed by hand at ``end_ts``, by the engine's rules.

    The machine's state machine as the runner last stored it, when it holds
    this session, is stopped there.  Otherwise (no runner, or its state is
    gone) the session keeps what the runner wrote up to ``last`` and the rest
    is what the engine makes of the machine's current power held since then.
    """
    config = device._detector_config()
    if device.detector_snapshot:
        try:
            machine = SessionStateMachine.restore(config, device.detector_snapshot)
        except (ValueError, TypeError, KeyError):
            machine = None
        open_session = machine.session if machine is not None else None
        if open_session is not None and open_session.start_time == session.start_ts:
            return _stopped(machine, end_ts)
    machine = SessionStateMachine(config)
    machine.feed(last, device.current_power_w or 0.0)
    machine.manual_start(last)
    rest = _stopped(machine, end_ts)
    return SessionSummary(
        session.start_ts,
        rest.end_time,
        session.standby_duration_s + rest.standby_duration_s,
        session.working_duration_s + rest.working_duration_s,
        session.energy_wh + rest.energy_wh,
        MANUAL,
    )


def _stopped(machine, end_ts):
    """The summary of ``machine``'s open session stopped by hand at ``end_ts``."""
    events = machine.manual_stop(end_ts, apply_deadlines=False)
    return next(e.summary for e in events if type(e) is SessionClosed)


def _device_now(device):
    """Now on the meter's clock (sessions are in device time)."""
    offset = (device.parser_snapshot or {}).get("clock_offset") or 0.0
    return time.time() + offset
