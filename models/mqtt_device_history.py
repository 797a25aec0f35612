# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A machine's power history read back: the runs of records of a time range,
and the power curve the session and machine forms draw.

The runner writes the history (services/engine/history.py): sealed chunks in
``mqtt_power_chunk`` and the newest records in ``mqtt_device.history_tail``.
"""

import itertools
import time
import zlib

from odoo import _, fields, models
from odoo.exceptions import UserError

from ..services.engine import history
from ..services.engine.types import State, StateChanged
from .rights import USER, guarded

MAX_CURVE_HOURS = 31 * 24  # a month: a replay of seconds, not of years

CURVE_POINTS = 800  # buckets drawn; each keeps its lowest and highest power
# The states shaded on a power curve: a session's standby and working time,
# and its stop delay (counted as standby, though the power is below it).
SHADED = (State.STANDBY.value, State.WORKING.value, State.STOPPING.value)


class MqttDevice(models.Model):
    _inherit = "mqtt.device"

    recompute_log_ids = fields.One2many(
        "mqtt.session.recompute.log",
        "device_id",
        string="Recomputations",
        groups="open_workshop_mqtt.group_manager",
    )
    history_chunk_count = fields.Integer(
        string="History Chunks", compute="_compute_history_chunk_count"
    )

    def _compute_history_chunk_count(self):
        counts = {}
        if self.ids:
            self.env.cr.execute(
                "SELECT device_id, count(*) FROM mqtt_power_chunk "
                "WHERE device_id IN %s GROUP BY device_id",
                (tuple(self.ids),),
            )
            counts = dict(self.env.cr.fetchall())
        for device in self:
            device.history_chunk_count = counts.get(device.id, 0)

    def _history_chunks(self, t_from=None, t_to=None):
        """[(first_ts, last_ts, data)] of the chunks overlapping [t_from, t_to]
        (None: open end), in order; data compressed."""
        self.ensure_one()
        self.env.cr.execute(
            "SELECT first_ts, last_ts, data FROM mqtt_power_chunk "
            "WHERE device_id = %s AND (%s IS NULL OR last_ts >= %s) "
            "AND (%s IS NULL OR first_ts <= %s) ORDER BY first_ts, id",
            (self.id, t_from, t_from, t_to, t_to),
        )
        return [(a, b, bytes(d)) for a, b, d in self.env.cr.fetchall()]

    def _history_tail(self):
        self.ensure_one()
        self.env.cr.execute(
            "SELECT history_tail FROM mqtt_device WHERE id = %s", (self.id,)
        )
        row = self.env.cr.fetchone()
        return bytes(row[0]) if row and row[0] else None

    def _history_runs(self, t_from=None, t_to=None):
        """Decoded runs (each starts with its SNAP) covering [t_from, t_to]."""
        runs = [
            history.decode_chunk(data)
            for _first, _last, data in self._history_chunks(t_from, t_to)
        ]
        tail = self._history_tail()
        if tail:
            runs.append(history.decode(tail))
        return runs

    def _history_starts(self, t_from, t_to):
        """[(first_ts, opening snapshot)] of the chunks starting in
        [t_from, t_to] and of the one running at t_from (read from each
        chunk's first bytes only): where a replay can begin."""
        self.ensure_one()
        self.env.cr.execute(
            "SELECT first_ts, substring(data from 1 for 400) FROM mqtt_power_chunk "
            "WHERE device_id = %s AND last_ts >= %s AND first_ts <= %s "
            "ORDER BY first_ts, id",
            (self.id, t_from, t_to),
        )
        starts = []
        for first_ts, head in self.env.cr.fetchall():
            data = zlib.decompressobj().decompress(bytes(head), 256)
            starts.append((first_ts, next(history.decode(data)).snapshot))
        return starts

    def _power_curve(self, t_from, t_to, points=CURVE_POINTS):
        """The power over [t_from, t_to] for drawing: a step line thinned to
        ``points`` buckets (the lowest and the highest power of each are
        kept, never averaged), the thresholds, and the standby and working
        spans the state machine went through (with the current settings)."""
        self.ensure_one()
        config = self._detector_config()
        curve = _Curve(t_from, t_to, points, config.message_timeout_s)
        replay = history.Replay(config)
        for run in self._history_runs(t_from, t_to):
            records = iter(run)
            if replay.machine is None:
                replay.run(itertools.islice(records, 1))  # its SNAP: the start
                if replay.machine is None:
                    continue
                curve.start(replay.machine)
            for record in records:
                for event in history.apply(replay.machine, record):
                    if type(event) is StateChanged:
                        curve.state(event.ts, event.new.value)
                curve.add(record)
        config_values = {
            "standby_w": config.standby_threshold_w,
            "working_w": config.working_threshold_w,
            "stop_delay_s": config.stop_debounce_s,
            "empty": replay.machine is None,
        }
        return dict(curve.result(), **config_values)

    @guarded(USER)
    def get_power_curve(self, hours=24):
        """The last ``hours`` (up to ``MAX_CURVE_HOURS``) of this machine's
        power, for its form."""
        self.ensure_one()
        try:
            hours = float(hours)
        except (TypeError, ValueError) as exc:
            raise UserError(_("Hours must be a number.")) from exc
        if not 0 < hours <= MAX_CURVE_HOURS:
            raise UserError(_("A power curve spans up to %s hours.", MAX_CURVE_HOURS))
        t_to = time.time() + ((self.parser_snapshot or {}).get("clock_offset") or 0.0)
        return self.sudo()._power_curve(t_to - hours * 3600.0, t_to)


class _Curve:
    """Collects a power step line in buckets, the shaded state spans, and
    where there is no data.

    A reading holds until the next, but not past the silence timeout (the
    engine forgets the power then), nor across the meter's offline notice:
    there the line breaks (a point with no power) and a "nodata" span is
    shaded until the next reading, so the chart draws nothing it does not
    know."""

    def __init__(self, t_from, t_to, points, timeout_s):
        self.t_from, self.t_to = t_from, t_to
        self.timeout_s = timeout_s
        self.bucket = max((t_to - t_from) / max(points, 1), 1e-3)
        self.buckets = {}  # index -> [(ts, power) lowest, (ts, power) highest]
        self.held = None  # the power at t_from
        self.spans = []
        self.current, self.since = None, t_from
        self.last_ts = None  # the last reading's time
        self.gap_from = None  # an offline notice's time: no data since
        self.gaps = []  # (from, to) without data

    def start(self, machine):
        self.current = machine.state.value
        self.held = machine.power_w
        self.last_ts = machine.last_ts

    def state(self, ts, new):
        if self.current in SHADED and ts > self.t_from:
            self.spans.append(
                (max(self.since, self.t_from), min(ts, self.t_to), self.current)
            )
        self.current, self.since = new, ts

    def add(self, record):
        if record.kind == history.OFFLINE:
            if self.gap_from is None:
                self.gap_from = record.ts
            return
        if record.kind != history.READ:
            return
        self._gap_before(record.ts)
        self.last_ts = record.ts
        power = record.power_w or 0.0
        if record.ts < self.t_from:
            self.held = power
            return
        if record.ts > self.t_to:
            return
        index = int((record.ts - self.t_from) / self.bucket)
        low_high = self.buckets.get(index)
        if low_high is None:
            self.buckets[index] = [(record.ts, power), (record.ts, power)]
        elif power < low_high[0][1]:
            low_high[0] = (record.ts, power)
        elif power > low_high[1][1]:
            low_high[1] = (record.ts, power)

    def _gap_before(self, ts):
        """No data between the last reading's hold (or an offline notice) and
        a reading at ``ts`` (or the end of the curve)."""
        start = self.gap_from
        if self.last_ts is not None and ts - self.last_ts > self.timeout_s:
            held_to = self.last_ts + self.timeout_s
            start = held_to if start is None else min(start, held_to)
        self.gap_from = None
        if start is None:
            return
        start, end = max(start, self.t_from), min(ts, self.t_to)
        if end > start:
            self.gaps.append((start, end))

    def result(self):
        if self.current in SHADED and self.since < self.t_to:
            self.spans.append((max(self.since, self.t_from), self.t_to, self.current))
        if self.last_ts is not None:
            self._gap_before(self.t_to)
        elif self.gap_from is not None:
            self.gaps.append((max(self.gap_from, self.t_from), self.t_to))
        line = []
        if self.held is not None:
            line.append((self.t_from, self.held))
        for index in sorted(self.buckets):
            low, high = self.buckets[index]
            line.extend(sorted({low, high}))
        if self.held is None:  # unknown until the first reading
            first = line[0][0] if line else self.t_to
            if first > self.t_from:
                self.gaps.append((self.t_from, first))
        if line and line[-1][0] < self.t_to:
            line.append((self.t_to, line[-1][1]))
        return {
            "from": self.t_from * 1000.0,
            "to": self.t_to * 1000.0,
            "points": _broken(line, self.gaps),
            "spans": [
                [round(a * 1000.0), round(b * 1000.0), s]
                for a, b, s in self.spans
                if b > a
            ]
            + [[round(a * 1000.0), round(b * 1000.0), "nodata"] for a, b in self.gaps],
        }


def _broken(line, gaps):
    """The step line in milliseconds, broken at each gap: the held power
    drawn up to the gap's start, a point without power (null) there, and
    the line resumes at the first reading after it (the gap's end)."""
    gaps = sorted(gaps)
    points = []
    k = 0
    for t, power in line:
        while k < len(gaps) and gaps[k][0] <= t:
            start = gaps[k][0]
            if points and points[-1][1] is not None:
                points.append([round(start * 1000.0), points[-1][1]])
            points.append([round(start * 1000.0), None])
            k += 1
        if any(a <= t < b for a, b in gaps[:k]):
            continue  # inside a gap: not known
        points.append([round(t * 1000.0), power])
    return points
