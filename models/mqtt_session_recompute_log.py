# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The audit trail of recomputed sessions: who, when, what window, which
settings before and after, and what it changed, one row per machine."""

from odoo import api, fields, models

from ..services.engine.timebase import to_utc


class MqttSessionRecomputeLog(models.Model):
    _name = "mqtt.session.recompute.log"
    _description = "Recomputed Sessions (audit trail)"
    _order = "create_date desc, id desc"

    device_id = fields.Many2one(
        "mqtt.device", string="Machine", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="device_id.company_id", store=True)
    user_id = fields.Many2one("res.users", string="By", required=True, readonly=True)
    window_from = fields.Float(readonly=True)
    window_to = fields.Float(readonly=True)
    window_from_time = fields.Datetime(string="From", compute="_compute_times")
    window_to_time = fields.Datetime(string="To", compute="_compute_times")
    old_params = fields.Json(string="Settings Before", readonly=True)
    new_params = fields.Json(string="Settings Used", readonly=True)
    params_text = fields.Char(string="Settings", compute="_compute_params_text")
    params_written = fields.Boolean(string="Settings Kept", readonly=True)
    kept = fields.Integer(string="Unchanged", readonly=True)
    changed = fields.Integer(readonly=True)
    created = fields.Integer(string="New", readonly=True)
    removed = fields.Integer(string="Gone", readonly=True)
    left_alone = fields.Integer(readonly=True)

    @api.depends("window_from", "window_to")
    def _compute_times(self):
        for rec in self:
            rec.window_from_time = to_utc(rec.window_from) if rec.window_from else False
            rec.window_to_time = to_utc(rec.window_to) if rec.window_to else False

    @api.depends("old_params", "new_params")
    def _compute_params_text(self):
        labels = {
            "standby_threshold_w": "standby %s W",
            "working_threshold_w": "working %s W",
            "start_debounce_s": "start %s s",
            "stop_debounce_s": "stop %s s",
            "message_timeout_s": "timeout %s s",
        }
        for rec in self:
            old, new = rec.old_params or {}, rec.new_params or {}
            parts = [
                (labels[key] % f"{old.get(key, '?'):g} -> {new[key]:g}")
                if old.get(key) != new[key]
                else labels[key] % f"{new[key]:g}"
                for key in labels
                if key in new
            ]
            rec.params_text = ", ".join(parts)
