# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What the recompute preview shows: per machine, and per session changed."""

from odoo import api, fields, models

from ..services.engine.timebase import to_utc
from .mqtt_session import END_REASON_SELECTION, duration_text

KINDS = [
    ("same", "Unchanged"),
    ("change", "Changes"),
    ("appear", "Appears"),
    ("vanish", "Vanishes"),
    ("left_alone", "Left Alone"),
]


class MqttSessionRecomputeMachine(models.TransientModel):
    _name = "mqtt.session.recompute.machine"
    _description = "Recompute Sessions: one machine, before and after"

    wizard_id = fields.Many2one(
        "mqtt.session.recompute", required=True, ondelete="cascade"
    )
    device_id = fields.Many2one("mqtt.device", string="Machine", readonly=True)
    window_from = fields.Float(readonly=True)
    window_to = fields.Float(readonly=True)
    window_from_time = fields.Datetime(string="From", compute="_compute_times")
    window_to_time = fields.Datetime(string="To", compute="_compute_times")
    sessions_before = fields.Integer(readonly=True)
    sessions_after = fields.Integer(readonly=True)
    working_h_before = fields.Float(string="Working Before (h)", readonly=True)
    working_h_after = fields.Float(string="Working After (h)", readonly=True)
    standby_h_before = fields.Float(string="Standby Before (h)", readonly=True)
    standby_h_after = fields.Float(string="Standby After (h)", readonly=True)
    energy_kwh_before = fields.Float(
        string="Energy Before (kWh)", readonly=True, digits=(16, 3)
    )
    energy_kwh_after = fields.Float(
        string="Energy After (kWh)", readonly=True, digits=(16, 3)
    )
    kept = fields.Integer(string="Unchanged", readonly=True)
    changed = fields.Integer(readonly=True)
    appearing = fields.Integer(string="New", readonly=True)
    vanishing = fields.Integer(string="Gone", readonly=True)
    left_alone = fields.Integer(readonly=True)
    detail = fields.Text(readonly=True)
    # The preview's columns, each "before -> after" in people's words.
    sessions_text = fields.Char(string="Sessions", compute="_compute_texts")
    working_text = fields.Char(string="Working", compute="_compute_texts")
    standby_text = fields.Char(string="Standby", compute="_compute_texts")
    energy_text = fields.Char(string="Energy", compute="_compute_texts")
    changes_text = fields.Char(string="Changes", compute="_compute_texts")

    @api.depends(
        "sessions_before",
        "sessions_after",
        "working_h_before",
        "working_h_after",
        "standby_h_before",
        "standby_h_after",
        "energy_kwh_before",
        "energy_kwh_after",
        "kept",
        "changed",
        "appearing",
        "vanishing",
        "left_alone",
    )
    @api.depends_context("lang")
    def _compute_texts(self):
        env = self.env
        for rec in self:
            rec.sessions_text = _arrow(rec.sessions_before, rec.sessions_after)
            rec.working_text = _arrow(
                duration_text(env, rec.working_h_before * 3600),
                duration_text(env, rec.working_h_after * 3600),
            )
            rec.standby_text = _arrow(
                duration_text(env, rec.standby_h_before * 3600),
                duration_text(env, rec.standby_h_after * 3600),
            )
            rec.energy_text = _arrow(
                f"{rec.energy_kwh_before:.1f}", f"{rec.energy_kwh_after:.1f} kWh"
            )
            rec.changes_text = env._(
                "%(kept)s unchanged, %(changed)s changed, %(new)s new, %(gone)s gone",
                kept=rec.kept,
                changed=rec.changed,
                new=rec.appearing,
                gone=rec.vanishing,
            ) + (env._(", %s left alone", rec.left_alone) if rec.left_alone else "")

    @api.depends("window_from", "window_to")
    def _compute_times(self):
        for rec in self:
            rec.window_from_time = to_utc(rec.window_from) if rec.window_from else False
            rec.window_to_time = to_utc(rec.window_to) if rec.window_to else False


class MqttSessionRecomputeLine(models.TransientModel):
    _name = "mqtt.session.recompute.line"
    _description = "Recompute Sessions: one session before and after"
    _order = "device_id, sort_ts"

    wizard_id = fields.Many2one(
        "mqtt.session.recompute", required=True, ondelete="cascade"
    )
    device_id = fields.Many2one("mqtt.device", string="Machine", readonly=True)
    kind = fields.Selection(KINDS, readonly=True)
    note = fields.Char(readonly=True)
    session_id = fields.Many2one("mqtt.session", readonly=True)
    sort_ts = fields.Float(compute="_compute_sort_ts", store=True)
    before_start_ts = fields.Float(readonly=True)
    before_end_ts = fields.Float(readonly=True)
    before_working_s = fields.Float(readonly=True)
    before_standby_s = fields.Float(readonly=True)
    before_energy_wh = fields.Float(readonly=True)
    before_end_reason = fields.Selection(END_REASON_SELECTION, readonly=True)
    after_start_ts = fields.Float(readonly=True)
    after_end_ts = fields.Float(readonly=True)
    after_working_s = fields.Float(readonly=True)
    after_standby_s = fields.Float(readonly=True)
    after_energy_wh = fields.Float(readonly=True)
    after_end_reason = fields.Selection(END_REASON_SELECTION, readonly=True)
    start_time = fields.Datetime(string="Start", compute="_compute_display")
    before_text = fields.Char(string="Before", compute="_compute_display")
    after_text = fields.Char(string="After", compute="_compute_display")

    @api.depends("before_start_ts", "after_start_ts")
    def _compute_sort_ts(self):
        for rec in self:
            rec.sort_ts = rec.after_start_ts or rec.before_start_ts

    @api.depends_context("tz")
    @api.depends("before_start_ts", "after_start_ts", "before_end_ts", "after_end_ts")
    def _compute_display(self):
        for rec in self:
            start = rec.after_start_ts or rec.before_start_ts
            rec.start_time = to_utc(start) if start else False
            rec.before_text = rec._describe("before")
            rec.after_text = rec._describe("after")

    def _describe(self, side):
        start = self[f"{side}_start_ts"]
        if not start:
            return False
        end = self[f"{side}_end_ts"]
        stamp = fields.Datetime.context_timestamp(self, to_utc(end)).strftime("%H:%M")
        field = self._fields[f"{side}_end_reason"]
        reason = dict(field._description_selection(self.env)).get(
            self[f"{side}_end_reason"], ""
        )
        return self.env._(
            "%(duration)s until %(end)s, %(working)s working, %(energy)s Wh "
            "(%(reason)s)",
            duration=duration_text(self.env, end - start),
            end=stamp,
            working=duration_text(self.env, self[f"{side}_working_s"]),
            energy=f"{self[f'{side}_energy_wh']:.1f}",
            reason=reason,
        )


def _arrow(before, after):
    return f"{before} → {after}"
