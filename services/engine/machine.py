"""The session state machine of one machine: power readings in, session events out.

Pure (standard library only): the engine runs one ``SessionStateMachine`` per
machine; ``replay`` (replay.py) and the tests run the same code without a
server.  Time is the meter's clock in float seconds; the state machine never
reads a wall clock, so the same inputs always give the same events.

Five states (``types.State``): ``idle`` -> ``starting`` when the power reaches
the standby threshold; after ``start_debounce_s`` above it a session opens at
the first reading above (``standby`` or ``working`` by the working
threshold); below the standby threshold the session is ``stopping`` and ends
at the drop once ``stop_debounce_s`` passed (``power_drop``); silence for
``message_timeout_s`` ends it at the last reading (``timeout``), the meter's
Last Will at that moment (``offline``), a person at any time (``manual``).
A reading holds until the next (a Shelly reports changes, not a period), and
a reading older than the last one applied is stale and changes nothing.

Semantics, and the choices made where the contract is silent:

* A session that is in ``stopping`` when it closes, for any reason (stop
  debounce, timeout, offline, manual stop), ends at ``t_stop``: the low-power
  period after the drop belongs to the session only if power comes back.
  While ``stopping``, the open session reports durations and energy up to
  ``t_stop`` for the same reason.
* The timeout ends a session at the last *activity*, the last reading or a
  manual start, whichever is later, so a manual session never ends before it
  began.  The timeout runs only in ``starting`` and in a session; an idle
  machine keeps its held power however long it is silent.
* Deadlines due at the same time: the debounce (start or stop) goes first,
  then the timeout.
* ``offline`` and ``manual_*`` inputs older than the processed time are
  applied at the processed time (clock skew must not lose a Last Will or a
  button press).  A reading older than the last applied event (a reading, a
  fired deadline, an offline, an acting manual input) is stale; a ``tick``
  that fired nothing does not make an in-flight reading stale, so a watchdog
  may tick freely.
* ``manual_start`` during ``starting`` opens the session at once but keeps
  ``start_time = t_start``: the machine has been on since then.  After
  ``manual_stop`` the machine is idle; only a later reading >= the standby
  threshold starts a new (debounced) session.
* ``reconfigure``: an open session continues; the new thresholds apply from
  the next input on; pending deadlines keep their reference times (t_start,
  t_stop, last activity) with the new durations, and one already past fires
  at the next input or tick, dated at the last applied event.
* Energy combines the meter counter with the power integral, because a
  Shelly publishes ``aenergy.total`` only about once a minute while power
  deltas come on every change (the counter alone gives a 40 s session 0 Wh
  and cuts off whatever was used after a session's last sample).  A counter
  *sample* is an ``energy_wh`` passed to ``feed``; the engine passes one only
  when the frame carried a fresh sample.  The rule:

  - I(t) is the cumulative integral of the held power over device time, in
    Wh, never reset between sessions: I(t) = I(last) + held * (t - last) /
    3600 for t >= the last reading; unknown power (None) adds 0.  I is stored
    at each sample's time, since a sample can predate the session.
  - Per session, C_first at t_first is the latest sample at or before the
    start (a sample on the starting reading counts), or if none the first
    sample inside the session; C_last at t_last is the latest sample inside
    it, initially C_first.
  - energy(up to end) = (C_last - C_first) + (I(end) - I(t_last))
    - (I(start) - I(t_first)): the counter covers [t_first, t_last], the
    integral the rest of [start, end].  With no sample, or only the one held
    at the start, this is I(end) - I(start).
  - A counter decrease inside the session (``starting`` included: a meter
    reset or replacement) makes it I(end) - I(start) for good.
  - A session closed while ``stopping`` ends at t_stop and uses only samples
    up to t_stop (its energy is frozen there, as is the open session's
    view); a decrease seen while ``stopping`` only matters if the session
    continues.
  - Choice: when the covered part (C_last - C_first) - (I(start) - I(t_first))
    is negative (the counter rose less over [t_first, t_last] than the power
    integral says for the head [t_first, start] alone, a meter disagreeing
    with itself), it counts as 0 and the tail I(end) - I(t_last) is kept, so
    non-negative power never gives negative energy.
  - Choice: the held power is forgotten (adds 0 from then on) at an offline
    notice's time and, on a timeout, at the last activity (where the timed
    out session ends), so such gaps add nothing to a later session's head.
* Event order for one transition: ``StateChanged`` first, then the
  ``SessionOpened``/``SessionClosed`` it caused.  ``StateChanged.power_w`` is
  None after a timeout or offline (the power is forgotten).
* ``feed``/``tick``/``offline``/``manual_*`` raise ``ValueError`` for a
  non-finite time, power or counter: the parsers reject such frames, so one
  arriving here is a bug to surface, not data.
"""

import math
import operator
from typing import Any, Final

from .types import (
    MANUAL,
    OFFLINE,
    POWER_DROP,
    TIMEOUT,
    DetectorConfig,
    Event,
    SessionClosed,
    SessionOpened,
    SessionSummary,
    State,
    StateChanged,
)

__all__ = ["SNAPSHOT_VERSION", "SessionStateMachine"]

SNAPSHOT_VERSION = 2
_INF = math.inf
_NINF = -math.inf

_IDLE = State.IDLE
_STARTING = State.STARTING
_STANDBY = State.STANDBY
_WORKING = State.WORKING
_STOPPING = State.STOPPING


# The state a snapshot keeps: attribute -> key.  The keys are those of
# snapshot version 2 and stay, so a machine stored before a rename restores.
_SNAPSHOT_KEYS = {
    "_last_ts": "last_ts",
    "_last_activity": "last_act",
    "_now": "now",
    "_floor": "floor",
    "_power": "power",
    "_integral_ws": "cum_ws",
    "_integral_t": "cum_t",
    "_counter": "e_held",
    "_counter_at": "e_held_i",
    "_start": "start",
    "_stop_at": "t_stop",
    "_working_s": "wk_s",
    "_working_since": "wk_from",
    "_integral_start": "i_start",
    "_counter_first": "e_first",
    "_integral_first": "i_first",
    "_counter_inside": "e_in",
    "_counter_reset": "e_bad",
    "_stop_energy": "stop_energy",
}
# The snapshot's keys, in the order of the history's binary snapshot record
# (history.py), and those that hold a flag.
SNAPSHOT_KEYS: Final = tuple(_SNAPSHOT_KEYS.values())
SNAPSHOT_FLAGS: Final = frozenset(
    _SNAPSHOT_KEYS[name] for name in ("_counter_inside", "_counter_reset")
)
# Times kept at -inf until first set (cheap comparisons), None in snapshots.
_INF_FIELDS = frozenset(("_last_ts", "_last_activity", "_now", "_floor"))
_INF_KEYS = tuple(_SNAPSHOT_KEYS[name] for name in _INF_FIELDS)
_snapshot_values = operator.attrgetter(*_SNAPSHOT_KEYS)


class SessionStateMachine:
    """The state machine of one device.  Every input returns the events it caused.

    Session bookkeeping: working time is summed per working segment
    (``_working_s`` plus the open segment from ``_working_since``) and standby time is
    ``end - start - working``, so the duration invariant holds exactly however
    many readings a session has.

    Energy (the rule in the module docstring): ``_integral_ws`` is the
    cumulative power integral I in W*s, accounted up to ``_integral_t`` (the
    last reading, or the moment the power was forgotten) and never reset.
    ``_counter``/``_counter_at`` are the latest counter sample (Wh) and I at
    its time; per session ``_integral_start`` is I(start),
    ``_counter_first``/``_integral_first`` the first counter sample (held at
    start, or the first inside), ``_counter_inside`` tells whether a sample
    came inside the session (then ``_counter`` is C_last) and
    ``_counter_reset`` that the counter went down (integral only).
    """

    __slots__ = (
        "_cfg",
        "_standby_w",
        "_working_w",
        "_start_delay",
        "_stop_delay",
        "_timeout",
        "_state",
        "_deadline",
        *_SNAPSHOT_KEYS,
    )
    _cfg: DetectorConfig
    _standby_w: float
    _working_w: float
    _start_delay: float
    _stop_delay: float
    _timeout: float
    _state: State
    _deadline: float
    _last_ts: float
    _last_activity: float
    _now: float
    _floor: float
    _power: float | None
    _integral_ws: float
    _integral_t: float
    _counter: float | None
    _counter_at: float
    _start: float
    _stop_at: float
    _working_s: float
    _working_since: float | None
    _integral_start: float
    _counter_first: float | None
    _integral_first: float
    _counter_inside: bool
    _counter_reset: bool
    _stop_energy: float

    def __init__(self, config: DetectorConfig) -> None:
        self.reconfigure(config)
        self._state = _IDLE
        self._power = self._counter = self._working_since = self._counter_first = None
        self._last_ts = self._last_activity = self._now = self._floor = _NINF
        self._start = self._stop_at = self._integral_t = 0.0
        self._working_s = self._integral_ws = self._stop_energy = 0.0
        self._counter_at = self._integral_start = self._integral_first = 0.0
        self._counter_inside = self._counter_reset = False
        self._deadline = _INF

    # -- public inputs -----------------------------------------------------

    def feed(
        self, ts: float, power_w: float, energy_wh: float | None = None
    ) -> list[Event]:
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
        ev: list[Event] = []
        if ts >= self._deadline:
            self._advance(ts, ev)
        held = self._power
        if held is not None:
            self._integral_ws += held * (ts - self._integral_t)
        self._integral_t = ts
        st = self._state
        if energy_wh is not None:
            self._count(st, energy_wh)
        if st is not _IDLE:
            self._feed_active(st, ts, power_w, ev)
        else:
            self._power = power_w
            if power_w >= self._standby_w:
                self._begin(ts, power_w >= self._working_w)
                self._state = _STARTING
                ev.append(StateChanged(ts, _IDLE, _STARTING, power_w))
        self._last_ts = self._last_activity = self._floor = ts
        if ts > self._now:  # not max(): this is the hot path
            self._now = ts
        self._set_deadline()
        if self._deadline <= self._now:
            self._advance(self._now, ev)
        return ev

    def tick(self, now: float) -> list[Event]:
        """Apply the deadlines due by ``now`` (a runtime watchdog calls this)."""
        if not _NINF < now < _INF:
            raise ValueError(f"tick needs a finite time, got {now!r}")
        if now < self._now:
            return []
        ev: list[Event] = []
        if self._deadline <= now:
            self._advance(now, ev)
        self._now = now
        return ev

    def offline(self, ts: float) -> list[Event]:
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

    def manual_start(self, ts: float) -> list[Event]:
        """Open a session at once (no-op if one is open); counts as activity.

        During ``starting`` the session keeps ``start_time = t_start``.
        """
        t, ev = self._input(ts)
        st = self._state
        if st is _IDLE:
            held = self._power
            self._begin(t, held is not None and held >= self._working_w)
        elif st is not _STARTING:
            return ev
        new = _WORKING if self._working_since is not None else _STANDBY
        self._state = new
        self._last_activity = self._floor = t
        ev.append(StateChanged(t, st, new, self._power))
        ev.append(SessionOpened(self._start, new, True))
        self._set_deadline()
        return ev

    def manual_stop(self, ts: float, apply_deadlines: bool = True) -> list[Event]:
        """Close an open session now with reason ``manual`` (no-op without one).

        ``apply_deadlines=False``: the stop is applied to the machine as it
        stands, without firing the debounces and timeout due before ``ts``
        first.  For a person's stop: the database holds the person's close,
        so a close the runner had not yet applied must not take its place,
        in the runner, in the stored machine or in a replay of the history.
        """
        t, ev = self._input(ts, apply_deadlines)
        if self._state is not _IDLE and self._state is not _STARTING:
            self._close(t, MANUAL, t, self._power, ev)
            self._floor = t
            self._set_deadline()
        return ev

    def reconfigure(self, config: DetectorConfig) -> None:
        """Swap thresholds on a running machine; an open session continues.

        The module docstring says what happens to pending deadlines.
        """
        if not isinstance(config, DetectorConfig):
            raise TypeError(f"config must be a DetectorConfig, got {config!r}")
        self._cfg = config
        self._standby_w = config.standby_threshold_w
        self._working_w = config.working_threshold_w
        self._start_delay = config.start_debounce_s
        self._stop_delay = config.stop_debounce_s
        self._timeout = config.message_timeout_s
        if hasattr(self, "_state"):
            self._set_deadline()

    # -- public views ------------------------------------------------------

    @property
    def config(self) -> DetectorConfig:
        return self._cfg

    @property
    def state(self) -> State:
        return self._state

    @property
    def power_w(self) -> float | None:
        """The held power, None when unknown (never seen, timed out, offline)."""
        return self._power

    @property
    def last_ts(self) -> float | None:
        return None if self._last_ts == _NINF else self._last_ts

    @property
    def now(self) -> float | None:
        """The processed time: the latest input's (a late offline or manual
        input takes effect here, not at its own time)."""
        return None if self._now == _NINF else self._now

    @property
    def session(self) -> SessionSummary | None:
        """The open session up to the processed time, or None."""
        st = self._state
        if st is _IDLE or st is _STARTING:
            return None
        if st is _STOPPING:
            end, wk, energy = self._stop_at, self._working_s, self._stop_energy
        else:
            end = self._now
            wk = self._working_at(end)
            energy = self._energy_at(end)
        total = end - self._start
        wk = min(max(wk, 0.0), total)
        return SessionSummary(self._start, None, total - wk, wk, energy, None)

    def next_deadline(self) -> float | None:
        """When the next tick could change something (None: nothing pending)."""
        return None if self._deadline == _INF else self._deadline

    def snapshot(self) -> dict:
        """JSON-safe primitives from which ``restore`` rebuilds this machine
        (taken for every machine that spoke, at every flush)."""
        snap: dict[str, Any] = {"version": SNAPSHOT_VERSION, "state": self._state.value}
        snap.update(zip(SNAPSHOT_KEYS, _snapshot_values(self), strict=True))
        for key in _INF_KEYS:
            if snap[key] == _NINF:
                snap[key] = None
        return snap

    @classmethod
    def restore(cls, config: DetectorConfig, snapshot: dict) -> "SessionStateMachine":
        """Rebuild a machine from ``snapshot()`` output (after a JSON round trip)."""
        version = snapshot.get("version")
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported session snapshot version {version!r}")
        machine = cls(config)
        try:
            machine._state = State(snapshot["state"])
            for name, key in _SNAPSHOT_KEYS.items():
                value = snapshot[key]
                if name in _INF_FIELDS and value is None:
                    value = _NINF
                setattr(machine, name, value)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"invalid session snapshot: {exc}") from exc
        machine._set_deadline()
        return machine

    # -- internals ---------------------------------------------------------

    def _input(
        self, ts: float, apply_deadlines: bool = True
    ) -> tuple[float, list[Event]]:
        """Validate a non-reading input time, apply due deadlines, clamp to now."""
        if not _NINF < ts < _INF:
            raise ValueError(f"input needs a finite time, got {ts!r}")
        t = max(self._now, ts)
        ev: list[Event] = []
        if apply_deadlines and self._deadline <= t:
            self._advance(t, ev)
        self._now = t
        return t, ev

    def _count(self, st: State, energy_wh: float) -> None:
        """A counter sample at the reading just integrated (I is ``_integral_ws``).

        Inside a session (``starting`` included) the first one is C_first when
        none was held at the start, and a decrease is a meter reset.
        """
        if st is not _IDLE:
            if self._counter_first is None:
                self._counter_first = energy_wh
                self._integral_first = self._integral_ws
            elif self._counter is not None and energy_wh < self._counter:
                self._counter_reset = True  # (C_first set: a sample is held)
            self._counter_inside = True
        self._counter = energy_wh
        self._counter_at = self._integral_ws

    def _forget(self, t: float) -> None:
        """The held power becomes unknown at t: account it up to t, then 0 W."""
        held = self._power
        if held is not None:
            self._integral_ws += held * (t - self._integral_t)
            self._integral_t = t
            self._power = None

    def _integral_at(self, t: float) -> float:
        """I(t) in W*s, for t >= ``_integral_t``."""
        held = self._power
        if held is None:
            return self._integral_ws
        return self._integral_ws + held * (t - self._integral_t)

    def _feed_active(
        self, st: State, ts: float, power_w: float, ev: list[Event]
    ) -> None:
        """A reading while starting or in a session (already integrated): move."""
        self._power = power_w
        if power_w < self._standby_w:
            if st is _STARTING:
                self._state = _IDLE
                ev.append(StateChanged(ts, st, _IDLE, power_w))
            elif st is not _STOPPING:
                self._end_working(ts)
                self._stop_at = ts
                self._stop_energy = self._energy_at(ts)
                self._state = _STOPPING
                ev.append(StateChanged(ts, st, _STOPPING, power_w))
        elif power_w >= self._working_w:
            if self._working_since is None:
                self._working_since = ts
            if st is _STANDBY or st is _STOPPING:
                self._state = _WORKING
                ev.append(StateChanged(ts, st, _WORKING, power_w))
        else:
            self._end_working(ts)
            if st is _WORKING or st is _STOPPING:
                self._state = _STANDBY
                ev.append(StateChanged(ts, st, _STANDBY, power_w))

    def _end_working(self, t: float) -> None:
        """Close the open working segment (if any) at t."""
        if self._working_since is not None:
            self._working_s += t - self._working_since
            self._working_since = None

    def _begin(self, t: float, working: bool) -> None:
        """Reset the per-session accumulators at a (pending) session start."""
        self._start = t
        self._counter_inside = self._counter_reset = False
        self._working_s = 0.0
        self._working_since = t if working else None
        self._integral_start = self._integral_at(t)
        self._counter_first = self._counter
        self._integral_first = self._counter_at

    def _working_at(self, t: float) -> float:
        wk_from = self._working_since
        return self._working_s if wk_from is None else self._working_s + (t - wk_from)

    def _energy_at(self, t: float) -> float:
        """Session energy (Wh) up to t: counter over [t_first, t_last], I elsewhere."""
        i_end = self._integral_at(t)
        # No sample inside: C_last == C_first.
        if not self._counter_inside or self._counter_reset:
            return (i_end - self._integral_start) / 3600.0
        counter, first = self._counter, self._counter_first
        assert counter is not None and first is not None  # a sample came inside
        covered = (counter - first) - (
            self._integral_start - self._integral_first
        ) / 3600.0
        if covered < 0.0:  # counter below the head's integral: see the docs
            covered = 0.0
        return covered + (i_end - self._counter_at) / 3600.0

    def _set_deadline(self) -> None:
        st = self._state
        if st is _IDLE:
            self._deadline = _INF
            return
        dl = self._last_activity + self._timeout
        if st is _STARTING:
            dl = min(dl, self._start + self._start_delay)
        elif st is _STOPPING:
            dl = min(dl, self._stop_at + self._stop_delay)
        self._deadline = dl

    def _advance(self, t: float, ev: list[Event]) -> None:
        """Fire every deadline <= t, earliest first (debounce before timeout)."""
        while self._deadline <= t:
            st = self._state
            timeout_dl = self._last_activity + self._timeout
            te = max(self._deadline, self._floor)
            if st is _STARTING and self._start + self._start_delay <= timeout_dl:
                new = _WORKING if self._working_since is not None else _STANDBY
                self._state = new
                ev.append(StateChanged(te, st, new, self._power))
                ev.append(SessionOpened(self._start, new, False))
            elif st is _STOPPING and self._stop_at + self._stop_delay <= timeout_dl:
                self._close(self._stop_at, POWER_DROP, te, self._power, ev)
            elif st is _STARTING:
                self._state = _IDLE
                self._forget(self._last_activity)
                ev.append(StateChanged(te, st, _IDLE, None))
            else:
                self._close(self._last_activity, TIMEOUT, te, None, ev)
                self._forget(self._last_activity)
            self._floor = te
            self._set_deadline()

    def _close(
        self,
        end: float,
        reason: str,
        te: float,
        power_after: float | None,
        ev: list[Event],
    ) -> None:
        """Close the open session at ``end`` (``t_stop`` when stopping)."""
        st = self._state
        if st is _STOPPING:
            end, wk, energy = self._stop_at, self._working_s, self._stop_energy
        else:
            wk, energy = self._working_at(end), self._energy_at(end)
        total = end - self._start
        wk = min(max(wk, 0.0), total)
        summary = SessionSummary(self._start, end, total - wk, wk, energy, reason)
        self._state = _IDLE
        ev.append(StateChanged(te, st, _IDLE, power_after))
        ev.append(SessionClosed(summary))
