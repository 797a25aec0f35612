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
SHADED = (State.STANDBY.value, State.WORKING.value)


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
        curve = _Curve(t_from, t_to, points)
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
    """Collects a power step line in buckets and the shaded state spans."""

    def __init__(self, t_from, t_to, points):
        self.t_from, self.t_to = t_from, t_to
        self.bucket = max((t_to - t_from) / max(points, 1), 1e-3)
        self.buckets = {}  # index -> [(ts, power) lowest, (ts, power) highest]
        self.held = None  # the power at t_from
        self.spans = []
        self.current, self.since = None, t_from

    def start(self, machine):
        self.current = machine.state.value
        self.held = machine.power_w

    def state(self, ts, new):
        if self.current in SHADED and ts > self.t_from:
            self.spans.append(
                (max(self.since, self.t_from), min(ts, self.t_to), self.current)
            )
        self.current, self.since = new, ts

    def add(self, record):
        if record.kind not in (history.READ, history.OFFLINE):
            return
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

    def result(self):
        if self.current in SHADED and self.since < self.t_to:
            self.spans.append((max(self.since, self.t_from), self.t_to, self.current))
        line = [(self.t_from, self.held or 0.0)]
        for index in sorted(self.buckets):
            low, high = self.buckets[index]
            line.extend(sorted({low, high}))
        if line[-1][0] < self.t_to:
            line.append((self.t_to, line[-1][1]))
        return {
            "from": self.t_from * 1000.0,
            "to": self.t_to * 1000.0,
            "points": [[round(t * 1000.0), p] for t, p in line],
            "spans": [
                [round(a * 1000.0), round(b * 1000.0), s]
                for a, b, s in self.spans
                if b > a
            ],
        }
