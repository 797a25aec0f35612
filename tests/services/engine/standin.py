"""The live engine as the database runner drives it, against a stand-in
database: what the writer would leave in PostgreSQL, kept in dicts.

The stand-in writes a sealed batch the way ``services/runner/writer.py``
does (a session's start and durations from each op; an update or close only
while the session still runs; a session opened and closed in one batch
inserted closed; a redelivered open reusing the session of that start) and
enforces PostgreSQL's two unique indexes on ``mqtt_session`` statement by
statement: one running session per machine, one session per machine and
start.  A refused batch leaves nothing behind (``Refused``), as a rolled
back transaction does.  ``Runner.flush`` follows the runner's policy
(``services/runner/flush.py``): resync with the database at most
``MAX_RESYNCS`` times, then write each machine's part apart and quarantine
the one still refused.

A person acts on the stand-in the way the model does: ``person_start`` and
``person_stop`` change the database at once, whether the runner's batch is
empty or not; the runner learns of it at its next reconcile, or when the
database refuses its batch.
"""

import copy
import itertools
import json

from ....services.engine import history as h
from ....services.engine.batch import (
    Batch,
    CloseSession,
    ContinueSession,
    OpenSession,
    UpdateSession,
    WriteResult,
    closing,
)
from ....services.engine.device import DeviceConfig
from ....services.engine.engine import Engine
from ....services.engine.types import MANUAL, DetectorConfig, SessionSummary
from ....services.mqtt.inbound import InboundMessage

T0 = 1_780_000_000.0
CONFIG = DetectorConfig()
PREFIXES = ("shellypmminig3-0000000000a1", "shellypmminig3-0000000000a2")
MAX_RESYNCS = 2  # services/runner/flush.py (Odoo-side, not importable here)


class Refused(Exception):
    """A unique index refused a statement: the transaction is rolled back."""

    def __init__(self, device_id, index):
        super().__init__(f"machine {device_id}: {index}")
        self.device_id = device_id


class Database:
    """The rows the runner and people leave behind."""

    def __init__(self, devices=(1, 2)):
        self.devices = {dev_id: {} for dev_id in devices}
        # id -> dict(device, start, summary (None: running), manual)
        self.sessions = {}
        self.chunks = []
        self._ids = itertools.count(1)
        self.refusals = 0

    # -- what load_devices reads ----------------------------------------------
    def running(self, dev_id):
        """The machine's running session (id, start), or (None, None)."""
        for sid, s in self.sessions.items():
            if s["device"] == dev_id and s["summary"] is None:
                return sid, s["start"]
        return None, None

    def config(self, dev_id):
        stored = self.devices[dev_id]
        sid, start = self.running(dev_id)
        return DeviceConfig(
            id=dev_id,
            name=f"Machine {dev_id}",
            connection_id=1,
            company_id=1,
            parser_type="shelly_gen2",
            topic_prefix=PREFIXES[dev_id - 1],
            topic_pattern=None,
            component="pm1:0",
            detector=CONFIG,
            poll_interval_s=0,
            max_msg_rate=100_000,
            detector_snapshot=stored.get("dsnap"),
            parser_snapshot=stored.get("psnap"),
            running_session_id=sid,
            running_start_ts=start,
            history_tail=stored.get("tail"),
        )

    # -- a person, through the model ------------------------------------------
    def person_start(self, dev_id, start):
        """``mqtt.session._open_manual``: refused while one runs."""
        if self.running(dev_id)[0] is not None:
            return None
        if any(
            s["device"] == dev_id and s["start"] == start
            for s in self.sessions.values()
        ):
            return None  # the model would hit the unique index too
        sid = next(self._ids)
        self.sessions[sid] = {
            "device": dev_id,
            "start": start,
            "summary": None,
            "manual": True,
        }
        return sid

    def person_stop(self, dev_id, end):
        """``mqtt.session._close_manual`` at ``end`` (its durations do not
        matter here)."""
        sid, start = self.running(dev_id)
        if sid is not None:
            end = max(start, end)
            self.sessions[sid]["summary"] = SessionSummary(
                start, end, end - start, 0.0, 0.0, MANUAL
            )
            self.sessions[sid]["manual"] = True
        return sid

    # -- the writer -----------------------------------------------------------
    def commit(self, batch, isolate=False):
        """Write ``batch`` in one transaction, or raise Refused.

        ``isolate``: each machine's part apart (a savepoint each); a machine
        whose part is refused is quarantined and the rest is written."""
        if not isolate:
            sessions = copy.deepcopy(self.sessions)
            ids = self._ids
            session_ids = {}
            for dev_id in sorted(batch.device_ids()):
                session_ids.update(self._write_machine(sessions, batch, dev_id))
            self.sessions = sessions
            self._ids = ids
            self._write_rows(batch, session_ids)
            return WriteResult(session_ids)
        session_ids = {}
        for dev_id in sorted(batch.device_ids() - set(batch.quarantined)):
            sessions = copy.deepcopy(self.sessions)
            try:
                written = self._write_machine(sessions, batch, dev_id)
            except Refused as exc:
                batch.quarantine(dev_id, str(exc))
                continue
            self.sessions = sessions
            session_ids.update(written)
        self._write_rows(batch, session_ids)
        return WriteResult(session_ids)

    def _write_machine(self, sessions, batch, dev_id):
        """One machine's session ops, as SessionDetector.apply writes them."""
        work = batch.sessions.get(dev_id)
        if work is None:
            return {}
        running = {
            sid
            for sid, s in sessions.items()
            if s["device"] == dev_id and s["summary"] is None
        }
        sid = work.session_id
        ops = work.ops
        for n, op in enumerate(ops):
            if type(op) is OpenSession:
                close = closing(ops, n)
                existing = [
                    i
                    for i, s in sessions.items()
                    if s["device"] == dev_id and s["start"] == op.start_ts
                ]
                if existing:
                    sid = existing[0]
                    if sessions[sid]["summary"] is None:
                        running.add(sid)
                    continue
                sid = next(self._ids)
                sessions[sid] = {
                    "device": dev_id,
                    "start": op.start_ts,
                    "summary": None,
                    "manual": op.manual,
                }
                if close is not None:
                    sessions[sid]["summary"] = close.summary
                    sessions[sid]["start"] = close.summary.start_time
                else:
                    running.add(sid)
                _check(sessions, dev_id)
                continue
            if type(op) is ContinueSession:
                sid = op.session_id
                continue
            if sid and sid in running:
                assert type(op) in (UpdateSession, CloseSession)
                sessions[sid]["start"] = op.summary.start_time
                if type(op) is CloseSession:
                    sessions[sid]["summary"] = op.summary
                    running.discard(sid)
                _check(sessions, dev_id)
            if type(op) is CloseSession:
                sid = None
        return {dev_id: sid if sid in running else None}

    def _write_rows(self, batch, session_ids):
        for dev_id, row in batch.live.items():
            stored = self.devices[dev_id]
            stored["dsnap"] = json.loads(json.dumps(row.detector_snapshot))
            stored["psnap"] = json.loads(json.dumps(row.parser_snapshot))
            if row.history_append is not None:
                old = b"" if row.history_reset else stored.get("tail", b"")
                stored["tail"] = old + row.history_append
        self.chunks.extend(batch.history_chunks)

    # -- reading it back --------------------------------------------------------
    def history(self, dev_id):
        runs = [h.decode_chunk(c.data) for c in self.chunks if c.device_id == dev_id]
        tail = self.devices[dev_id].get("tail")
        if tail:
            runs.append(h.decode(tail))
        return runs


def _check(sessions, dev_id):
    """PostgreSQL's unique indexes on mqtt_session, after each statement."""
    mine = [s for s in sessions.values() if s["device"] == dev_id]
    if sum(1 for s in mine if s["summary"] is None) > 1:
        raise Refused(dev_id, "mqtt_session_one_running_per_device")
    starts = [s["start"] for s in mine]
    if len(starts) != len(set(starts)):
        raise Refused(dev_id, "mqtt_session_device_start_unique")


class Clock:
    """The runner's monotonic clock, and the wall clock beside it (a meter's
    clock before it spoke, a person's ``_device_now``)."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def wall(self):
        return T0 + (self.now - 1000.0)


class Runner:
    """The engine as the database runner drives it: handle, tick, flush
    (with its refusal policy), reconcile, restart."""

    def __init__(self, devices=(1, 2)):
        self.dev_ids = devices
        self.db = Database(devices)
        self.clock = Clock()
        self.mids = itertools.count(1)
        self.quarantined = []
        self.resyncs = 0
        self.raced = False  # a person acted in the middle of a batch
        self.start()

    def start(self):
        self.engine = Engine(clock=self.clock, wall=self.clock.wall)
        self.engine.add_connection(1, "owm-test", discovery=False)
        self.engine.connection_up(1, session_present=True)
        self.batch = Batch()
        self.reconcile()

    def frame(self, dev, topic_suffix, payload, received_at, dup=False, mid=None):
        msg = InboundMessage(
            f"{PREFIXES[dev - 1]}/{topic_suffix}",
            payload.encode(),
            1,
            mid or next(self.mids),
            dup,
            False,
            received_at,
            1,
        )
        self.engine.handle(1, msg, self.batch)
        return msg

    def flush(self):
        """``Flusher.flush``: seal, write; on a refusal resync (at most
        MAX_RESYNCS times), then write each machine apart."""
        batch = self.batch
        self.engine.seal(batch)
        resyncs = 0
        while True:
            try:
                result = self.db.commit(batch)
                break
            except Refused:
                self.db.refusals += 1
                if resyncs < MAX_RESYNCS:
                    resyncs += 1
                    self.resyncs += 1
                    self.reconcile(batch)
                    self.engine.seal(batch)
                    continue
                result = self.db.commit(batch, isolate=True)
                break
        self.engine.committed(batch, result)
        self.quarantined.extend(batch.quarantined)
        self.batch = Batch()
        if batch.quarantined:
            self.reconcile()

    def reconcile(self, batch=None):
        """Load every machine from the database (the runner's reconcile)."""
        for dev_id in self.dev_ids:
            self.engine.upsert_device(self.db.config(dev_id), batch or self.batch)


def notify(ts, power, energy=None):
    comp = {"apower": power}
    if energy is not None:
        comp["aenergy"] = {"total": energy}
    return json.dumps({"method": "NotifyStatus", "params": {"ts": ts, "pm1:0": comp}})


def replayed(run, dev_id):
    """The replay's automatic sessions: not started nor stopped by a person."""
    machine, closed = h.replay_runs(run.db.history(dev_id), CONFIG)
    automatic = [
        r.summary for r in closed if not r.manual and r.summary.end_reason != MANUAL
    ]
    return machine, automatic


def live_automatic(run, dev_id):
    live = [
        s["summary"]
        for s in run.db.sessions.values()
        if s["device"] == dev_id and not s["manual"] and s["summary"] is not None
    ]
    return [s for s in live if s.end_reason != MANUAL]
