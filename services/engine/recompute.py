"""Recomputing a machine's sessions from its power history with other parameters.

Pure: the caller (the ``mqtt.session.recompute`` wizard) reads the stored
history and sessions, this module decides.

* Where a replay starts (``pick_start``): at a chunk whose opening snapshot
  is a machine at rest under the new parameters (idle, its held power below
  the new standby threshold), so the replay is what a state machine with the
  new parameters would have done; with unchanged parameters any chunk would
  do, and the replay is exact.
* What changes (``plan``): the automatic sessions of the window, compared
  with the replayed ones.  A session crossing a window edge is recomputed
  whole (the window grows to it).  Left alone: manual sessions (a person
  started or stopped them) and whatever a replayed session overlaps of them;
  the machine's running session and anything reaching into it (the runner
  owns it); the replay's own still-open session.
* A stored and a replayed session are the same session when they start at
  the same device time (to ``SAME_S``); then it is kept (same values) or
  changed in place; the others appear or vanish.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .history import Replayed, idle_below
from .types import MANUAL, DetectorConfig, SessionSummary

SAME_S = 0.005  # half the history's 10 ms precision of a Shelly clock


class StoredSession(NamedTuple):
    """A closed session in the database; ``automatic``: neither started nor
    stopped by a person."""

    id: int
    summary: SessionSummary
    automatic: bool


class Change(NamedTuple):
    kind: str  # "same", "change", "appear", "vanish"
    stored_id: int | None
    before: SessionSummary | None
    after: SessionSummary | None


@dataclass
class Plan:
    """What recomputing a window of one machine does."""

    window: tuple[float, float]
    changes: list[Change] = field(default_factory=list)
    left_alone: list[tuple[SessionSummary, str]] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]


def pick_start(
    starts: Sequence[tuple[float, dict]], before: float, config: DetectorConfig
) -> int:
    """The index of the chunk to replay from: the latest one starting at or
    before ``before`` whose opening snapshot is at rest under ``config``;
    the earliest one when none is.  ``starts``: (first_ts, snapshot) in order."""
    best = 0
    for index, (first_ts, snapshot) in enumerate(starts):
        if first_ts > before:
            break
        if idle_below(snapshot, config):
            best = index
    return best


def _overlaps(s: SessionSummary, a: float, b: float) -> bool:
    """Whether ``s`` and [a, b] share time; a session of no length (closed
    at its start) overlaps what holds its instant, edges included."""
    start = s.start_time
    end = s.end_time if s.end_time is not None else float("inf")
    if start == end:
        return a <= start <= b
    return start < b and end > a


def _same(x: SessionSummary, y: SessionSummary) -> bool:
    assert x.end_time is not None and y.end_time is not None
    return (
        abs(x.end_time - y.end_time) <= SAME_S
        and x.end_reason == y.end_reason
        and abs(x.working_duration_s - y.working_duration_s) <= SAME_S
        and abs(x.standby_duration_s - y.standby_duration_s) <= SAME_S
        and abs(x.energy_wh - y.energy_wh) <= 1e-6 * max(1.0, abs(y.energy_wh))
    )


def plan(
    replayed: Sequence[Replayed],
    replay_open: SessionSummary | None,
    stored: Sequence[StoredSession],
    window: tuple[float, float],
    running_start: float | None = None,
) -> Plan:
    """Compare the replay with the stored sessions over ``window``."""
    automatic = [s for s in stored if s.automatic]
    manual = [s.summary for s in stored if not s.automatic]
    candidates = [
        r.summary
        for r in replayed
        if not r.manual and r.summary.end_reason != MANUAL  # a person's: stays
    ]
    a, b = _grown(window, candidates + [x.summary for x in automatic], running_start)
    result = Plan((a, b))
    if replay_open is not None:
        result.left_alone.append((replay_open, "open"))
    limit = running_start if running_start is not None else float("inf")
    if replay_open is not None:
        limit = min(limit, replay_open.start_time)
    after: list[SessionSummary] = []
    for s in candidates:
        if not _overlaps(s, a, b):
            continue
        assert s.end_time is not None
        if s.end_time > limit:
            result.left_alone.append((s, "running"))
        elif any(_overlaps(s, m.start_time, m.end_time or limit) for m in manual):
            result.left_alone.append((s, "manual"))
        else:
            after.append(s)
    # Stored sessions that a left-alone replayed session overlaps stay too.
    kept = [left for left, _why in result.left_alone]
    before = [
        x
        for x in automatic
        if _overlaps(x.summary, a, b)
        and (x.summary.end_time or 0.0) <= limit
        and not any(
            _overlaps(x.summary, k.start_time, k.end_time or limit) for k in kept
        )
    ]
    result.changes = _matched(before, after)
    return result


def _grown(
    window: tuple[float, float],
    sessions: Sequence[SessionSummary],
    running_start: float | None,
) -> tuple[float, float]:
    """The window grown to whole sessions at its edges (never past the start
    of the running session)."""
    a, b = window
    if running_start is not None:
        b = min(b, running_start)
    while True:
        grown_a, grown_b = a, b
        for s in sessions:
            if _overlaps(s, a, b):
                assert s.end_time is not None
                grown_a = min(grown_a, s.start_time)
                grown_b = max(grown_b, s.end_time)
        if running_start is not None:
            grown_b = min(grown_b, running_start)
        if (grown_a, grown_b) == (a, b):
            return a, b
        a, b = grown_a, grown_b


def _matched(
    before: Sequence[StoredSession], after: Sequence[SessionSummary]
) -> list[Change]:
    """Stored and replayed sessions paired by their start."""
    by_start = {round(x.summary.start_time / SAME_S): x for x in before}
    matched: set[int] = set()
    changes = []
    for s in after:
        key = round(s.start_time / SAME_S)
        x = by_start.get(key) or by_start.get(key - 1) or by_start.get(key + 1)
        if (
            x is not None
            and x.id not in matched
            and abs(x.summary.start_time - s.start_time) <= SAME_S
        ):
            matched.add(x.id)
            kind = "same" if _same(s, x.summary) else "change"
            changes.append(Change(kind, x.id, x.summary, s))
        else:
            changes.append(Change("appear", None, None, s))
    for x in before:
        if x.id not in matched:
            changes.append(Change("vanish", x.id, x.summary, None))
    changes.sort(key=_start_of)
    return changes


def _start_of(change: Change) -> float:
    summary = change.after or change.before
    assert summary is not None
    return summary.start_time
