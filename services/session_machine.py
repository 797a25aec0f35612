"""The pure per-device session state machine (implementation).

Standard library only.  The semantics, and the choices made where DESIGN.md
is silent, are documented in ``services/session_detector.py``, the public
module that re-exports everything here.  The value types live in
``session_types.py``.
"""

import math

from .session_types import (
    MANUAL,
    OFFLINE,
    POWER_DROP,
    TIMEOUT,
    DetectorConfig,
    SessionClosed,
    SessionOpened,
    SessionSummary,
    State,
    StateChanged,
)

__all__ = [
    "MANUAL",
    "OFFLINE",
    "POWER_DROP",
    "TIMEOUT",
    "DetectorConfig",
    "SessionClosed",
    "SessionOpened",
    "SessionStateMachine",
    "SessionSummary",
    "State",
    "StateChanged",
]

SNAPSHOT_VERSION = 2
_INF = math.inf
_NINF = -math.inf

_IDLE = State.IDLE
_STARTING = State.STARTING
_STANDBY = State.STANDBY
_WORKING = State.WORKING
_STOPPING = State.STOPPING


# Internal times kept at -inf until first set (cheap comparisons), None in snapshots.
_INF_FIELDS = ("_last_ts", "_last_act", "_now", "_floor")
_SNAP_FIELDS = _INF_FIELDS + (
    "_power",
    "_cum_ws",
    "_cum_t",
    "_e_held",
    "_e_held_i",
    "_start",
    "_t_stop",
    "_wk_s",
    "_wk_from",
    "_i_start",
    "_e_first",
    "_i_first",
    "_e_in",
    "_e_bad",
    "_stop_energy",
)

_V1_ONLY = ("int_ws", "int_t", "e_start", "e_held")


def _upgrade_v1(snap):
    """A version-1 snapshot in version-2 terms (KeyError if a field is missing).

    Version 1 kept only the open session's own power integral (``int_ws``,
    accounted up to ``int_t``): it becomes I with I(start) = 0, so the running
    session's energy is exactly that integral.  Its counter fields are dropped
    (version 1 did not keep I at a sample's time) and the running session is
    marked integral-only; later sessions follow the full rule.  A session
    restored while ``stopping`` keeps the energy version 1 froze at t_stop.
    """
    new = {k: v for k, v in snap.items() if k not in _V1_ONLY}
    new.update(
        version=SNAPSHOT_VERSION,
        cum_ws=snap["int_ws"],
        cum_t=snap["int_t"],
        e_held=None,
        e_held_i=0.0,
        i_start=0.0,
        e_first=None,
        i_first=0.0,
        e_in=False,
        e_bad=True,
    )
    return new


class SessionStateMachine:
    """The state machine of one device.  Every input returns the events it caused.

    Session bookkeeping: working time is summed per working segment
    (``_wk_s`` plus the open segment from ``_wk_from``) and standby time is
    ``end - start - working``, so the duration invariant holds exactly however
    many readings a session has.

    Energy (rule in ``services/session_detector.py``): ``_cum_ws`` is the
    cumulative power integral I in W*s, accounted up to ``_cum_t`` (the last
    reading, or the moment the power was forgotten) and never reset.
    ``_e_held``/``_e_held_i`` are the latest counter sample (Wh) and I at its
    time; per session ``_i_start`` is I(start), ``_e_first``/``_i_first`` the
    first counter sample (held at start, or the first inside), ``_e_in`` tells
    whether a sample came inside the session (then ``_e_held`` is C_last) and
    ``_e_bad`` that the counter went down (integral only).
    """

    __slots__ = (
        "_cfg",
        "_sb_th",
        "_wk_th",
        "_start_db",
        "_stop_db",
        "_timeout",
        "_state",
        "_next_dl",
    ) + _SNAP_FIELDS

    def __init__(self, config):
        self.reconfigure(config)
        self._state = _IDLE
        self._power = self._e_held = self._wk_from = self._e_first = None
        self._last_ts = self._last_act = self._now = self._floor = _NINF
        self._start = self._t_stop = self._cum_t = 0.0
        self._wk_s = self._cum_ws = self._stop_energy = 0.0
        self._e_held_i = self._i_start = self._i_first = 0.0
        self._e_in = self._e_bad = False
        self._next_dl = _INF

    # -- public inputs -----------------------------------------------------

    def feed(self, ts, power_w, energy_wh=None):
        """Process one reading; stale or duplicate readings change nothing."""
        try:
            ok = (
                _NINF < ts < _INF
                and _NINF < power_w < _INF
                and (energy_wh is None or _NINF < energy_wh < _INF)
            )
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(
                "reading needs finite ts, power_w and energy_wh: "
                f"{ts!r}, {power_w!r}, {energy_wh!r}"
            )
        if ts <= self._last_ts or ts < self._floor:
            return []
        ev = []
        if ts >= self._next_dl:
            self._advance(ts, ev)
        held = self._power
        if held is not None:
            self._cum_ws += held * (ts - self._cum_t)
        self._cum_t = ts
        st = self._state
        if energy_wh is not None:
            self._count(st, energy_wh)
        if st is not _IDLE:
            self._feed_active(st, ts, power_w, ev)
        else:
            self._power = power_w
            if power_w >= self._sb_th:
                self._begin(ts, power_w >= self._wk_th)
                self._state = _STARTING
                ev.append(StateChanged(ts, _IDLE, _STARTING, power_w))
        self._last_ts = self._last_act = self._floor = ts
        if ts > self._now:  # not max(): this is the hot path
            self._now = ts
        self._set_deadline()
        if self._next_dl <= self._now:
            self._advance(self._now, ev)
        return ev

    def tick(self, now):
        """Apply the deadlines due by ``now`` (a runtime watchdog calls this)."""
        if not _NINF < now < _INF:
            raise ValueError(f"tick needs a finite time, got {now!r}")
        if now < self._now:
            return []
        ev = []
        if self._next_dl <= now:
            self._advance(now, ev)
        self._now = now
        return ev

    def offline(self, ts):
        """The meter's Last Will: close an open session, forget the power."""
        t, ev = self._input(ts)
        st = self._state
        if st is _STARTING:
            self._state = _IDLE
            ev.append(StateChanged(t, st, _IDLE, None))
        elif st is not _IDLE:
            self._close(t, OFFLINE, t, None, ev)
        self._forget(t)
        self._floor = t
        self._set_deadline()
        return ev

    def manual_start(self, ts):
        """Open a session at once (no-op if one is open); counts as activity.

        During ``starting`` the session keeps ``start_time = t_start``.
        """
        t, ev = self._input(ts)
        st = self._state
        if st is _IDLE:
            held = self._power
            self._begin(t, held is not None and held >= self._wk_th)
        elif st is not _STARTING:
            return ev
        new = _WORKING if self._wk_from is not None else _STANDBY
        self._state = new
        self._last_act = self._floor = t
        ev.append(StateChanged(t, st, new, self._power))
        ev.append(SessionOpened(self._start, new, True))
        self._set_deadline()
        return ev

    def manual_stop(self, ts):
        """Close an open session now with reason ``manual`` (no-op without one)."""
        t, ev = self._input(ts)
        if self._state is not _IDLE and self._state is not _STARTING:
            self._close(t, MANUAL, t, self._power, ev)
            self._floor = t
            self._set_deadline()
        return ev

    def reconfigure(self, config):
        """Swap thresholds on a running machine; an open session continues.

        See ``services/session_detector.py`` for what happens to pending deadlines.
        """
        if not isinstance(config, DetectorConfig):
            raise TypeError(f"config must be a DetectorConfig, got {config!r}")
        self._cfg = config
        self._sb_th = config.standby_threshold_w
        self._wk_th = config.working_threshold_w
        self._start_db = config.start_debounce_s
        self._stop_db = config.stop_debounce_s
        self._timeout = config.message_timeout_s
        if hasattr(self, "_state"):
            self._set_deadline()

    # -- public views ------------------------------------------------------

    @property
    def config(self):
        return self._cfg

    @property
    def state(self):
        return self._state

    @property
    def power_w(self):
        """The held power, None when unknown (never seen, timed out, offline)."""
        return self._power

    @property
    def last_ts(self):
        return None if self._last_ts == _NINF else self._last_ts

    @property
    def session(self):
        """The open session up to the processed time, or None."""
        st = self._state
        if st is _IDLE or st is _STARTING:
            return None
        if st is _STOPPING:
            end, wk, energy = self._t_stop, self._wk_s, self._stop_energy
        else:
            end = self._now
            wk = self._working_at(end)
            energy = self._energy_at(end)
        total = end - self._start
        wk = min(max(wk, 0.0), total)
        return SessionSummary(self._start, None, total - wk, wk, energy, None)

    def next_deadline(self):
        """When the next tick could change something (None: nothing pending)."""
        return None if self._next_dl == _INF else self._next_dl

    def snapshot(self):
        """JSON-safe primitives from which ``restore`` rebuilds this machine."""
        snap = {"version": SNAPSHOT_VERSION, "state": self._state.value}
        for name in _SNAP_FIELDS:
            value = getattr(self, name)
            if name in _INF_FIELDS and value == _NINF:
                value = None
            snap[name[1:]] = value
        return snap

    @classmethod
    def restore(cls, config, snapshot):
        """Rebuild a machine from ``snapshot()`` output (after a JSON round trip)."""
        version = snapshot.get("version")
        if version != SNAPSHOT_VERSION and version != 1:
            raise ValueError(f"unsupported session snapshot version {version!r}")
        machine = cls(config)
        try:
            if version == 1:
                snapshot = _upgrade_v1(snapshot)
            machine._state = State(snapshot["state"])
            for name in _SNAP_FIELDS:
                value = snapshot[name[1:]]
                if name in _INF_FIELDS and value is None:
                    value = _NINF
                setattr(machine, name, value)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"invalid session snapshot: {exc}") from exc
        machine._set_deadline()
        return machine

    # -- internals ---------------------------------------------------------

    def _input(self, ts):
        """Validate a non-reading input time, apply due deadlines, clamp to now."""
        if not _NINF < ts < _INF:
            raise ValueError(f"input needs a finite time, got {ts!r}")
        t = max(self._now, ts)
        ev = []
        if self._next_dl <= t:
            self._advance(t, ev)
        self._now = t
        return t, ev

    def _count(self, st, energy_wh):
        """A counter sample at the reading just integrated (I is ``_cum_ws``).

        Inside a session (``starting`` included) the first one is C_first when
        none was held at the start, and a decrease is a meter reset.
        """
        if st is not _IDLE:
            if self._e_first is None:
                self._e_first = energy_wh
                self._i_first = self._cum_ws
            elif energy_wh < self._e_held:
                self._e_bad = True
            self._e_in = True
        self._e_held = energy_wh
        self._e_held_i = self._cum_ws

    def _forget(self, t):
        """The held power becomes unknown at t: account it up to t, then 0 W."""
        held = self._power
        if held is not None:
            self._cum_ws += held * (t - self._cum_t)
            self._cum_t = t
            self._power = None

    def _integral_at(self, t):
        """I(t) in W*s, for t >= ``_cum_t``."""
        held = self._power
        if held is None:
            return self._cum_ws
        return self._cum_ws + held * (t - self._cum_t)

    def _feed_active(self, st, ts, power_w, ev):
        """A reading while starting or in a session (already integrated): move."""
        self._power = power_w
        if power_w < self._sb_th:
            if st is _STARTING:
                self._state = _IDLE
                ev.append(StateChanged(ts, st, _IDLE, power_w))
            elif st is not _STOPPING:
                self._end_working(ts)
                self._t_stop = ts
                self._stop_energy = self._energy_at(ts)
                self._state = _STOPPING
                ev.append(StateChanged(ts, st, _STOPPING, power_w))
        elif power_w >= self._wk_th:
            if self._wk_from is None:
                self._wk_from = ts
            if st is _STANDBY or st is _STOPPING:
                self._state = _WORKING
                ev.append(StateChanged(ts, st, _WORKING, power_w))
        else:
            self._end_working(ts)
            if st is _WORKING or st is _STOPPING:
                self._state = _STANDBY
                ev.append(StateChanged(ts, st, _STANDBY, power_w))

    def _end_working(self, t):
        """Close the open working segment (if any) at t."""
        if self._wk_from is not None:
            self._wk_s += t - self._wk_from
            self._wk_from = None

    def _begin(self, t, working):
        """Reset the per-session accumulators at a (pending) session start."""
        self._start = t
        self._e_in = self._e_bad = False
        self._wk_s = 0.0
        self._wk_from = t if working else None
        self._i_start = self._integral_at(t)
        self._e_first = self._e_held
        self._i_first = self._e_held_i

    def _working_at(self, t):
        wk_from = self._wk_from
        return self._wk_s if wk_from is None else self._wk_s + (t - wk_from)

    def _energy_at(self, t):
        """Session energy (Wh) up to t: counter over [t_first, t_last], I elsewhere."""
        i_end = self._integral_at(t)
        if not self._e_in or self._e_bad:  # no sample inside: C_last == C_first
            return (i_end - self._i_start) / 3600.0
        covered = (self._e_held - self._e_first) - (
            self._i_start - self._i_first
        ) / 3600.0
        if covered < 0.0:  # counter below the head's integral: see the docs
            covered = 0.0
        return covered + (i_end - self._e_held_i) / 3600.0

    def _set_deadline(self):
        st = self._state
        if st is _IDLE:
            self._next_dl = _INF
            return
        dl = self._last_act + self._timeout
        if st is _STARTING:
            dl = min(dl, self._start + self._start_db)
        elif st is _STOPPING:
            dl = min(dl, self._t_stop + self._stop_db)
        self._next_dl = dl

    def _advance(self, t, ev):
        """Fire every deadline <= t, earliest first (debounce before timeout)."""
        while self._next_dl <= t:
            st = self._state
            timeout_dl = self._last_act + self._timeout
            te = max(self._next_dl, self._floor)
            if st is _STARTING and self._start + self._start_db <= timeout_dl:
                new = _WORKING if self._wk_from is not None else _STANDBY
                self._state = new
                ev.append(StateChanged(te, st, new, self._power))
                ev.append(SessionOpened(self._start, new, False))
            elif st is _STOPPING and self._t_stop + self._stop_db <= timeout_dl:
                self._close(self._t_stop, POWER_DROP, te, self._power, ev)
            elif st is _STARTING:
                self._state = _IDLE
                self._forget(self._last_act)
                ev.append(StateChanged(te, st, _IDLE, None))
            else:
                self._close(self._last_act, TIMEOUT, te, None, ev)
                self._forget(self._last_act)
            self._floor = te
            self._set_deadline()

    def _close(self, end, reason, te, power_after, ev):
        """Close the open session at ``end`` (``t_stop`` when stopping)."""
        st = self._state
        if st is _STOPPING:
            end, wk, energy = self._t_stop, self._wk_s, self._stop_energy
        else:
            wk, energy = self._working_at(end), self._energy_at(end)
        total = end - self._start
        wk = min(max(wk, 0.0), total)
        summary = SessionSummary(self._start, end, total - wk, wk, energy, reason)
        self._state = _IDLE
        ev.append(StateChanged(te, st, _IDLE, power_after))
        ev.append(SessionClosed(summary))
