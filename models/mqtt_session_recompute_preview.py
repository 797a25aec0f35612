# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What the recompute wizard says to the manager: the chosen machines'
settings, the preview's summary before its details, a warning when the
change is large, and the numbers the confirmation asks about.  The replay
itself: mqtt_session_recompute.py."""

from odoo import api, fields, models

from .mqtt_session import duration_text
from .mqtt_session_recompute import PARAMS
from .rights import MANAGER, guarded

# A preview changing a machine's session count or standby this much (a
# factor) is flagged before it is applied.
LARGE_FACTOR = 2.0


class MqttSessionRecompute(models.TransientModel):
    _inherit = "mqtt.session.recompute"

    settings_note = fields.Char(compute="_compute_settings_note")
    summary = fields.Text(compute="_compute_summary")
    large_change = fields.Boolean(compute="_compute_summary")
    show_unchanged = fields.Boolean(
        string="Show unchanged sessions",
        help="Also list the sessions the recompute keeps as they are.",
    )
    changed_line_ids = fields.One2many(
        "mqtt.session.recompute.line",
        "wizard_id",
        string="Changed Sessions",
        domain=[("kind", "!=", "same")],
    )

    @api.onchange("device_ids")
    def _onchange_device_ids(self):
        """Start from the first chosen machine's settings."""
        first = self.device_ids[:1]
        if first and self.state == "draft":
            for name in PARAMS:
                self[name] = first[name]

    @api.depends("device_ids")
    @api.depends_context("lang")
    def _compute_settings_note(self):
        for wizard in self:
            machines = wizard.device_ids
            differ = len({tuple(m[name] for name in PARAMS) for m in machines}) > 1
            wizard.settings_note = (
                self.env._(
                    "The chosen machines' settings differ: these are %s's, and "
                    "the recompute uses them for all.",
                    machines[:1].name,
                )
                if differ
                else False
            )

    @api.depends("machine_ids")
    @api.depends_context("lang")
    def _compute_summary(self):
        env = self.env
        for wizard in self:
            rows = wizard.machine_ids
            if not rows:
                wizard.summary = False
                wizard.large_change = False
                continue
            before = sum(rows.mapped("sessions_before"))
            after = sum(rows.mapped("sessions_after"))
            standby = [
                sum(rows.mapped(f"standby_h_{s}")) * 3600 for s in ("before", "after")
            ]
            working = [
                sum(rows.mapped(f"working_h_{s}")) * 3600 for s in ("before", "after")
            ]
            wizard.summary = env._(
                "%(before)s → %(after)s sessions, working %(w0)s → %(w1)s, standby "
                "%(s0)s → %(s1)s; %(changed)s changed, %(new)s new, %(gone)s gone.",
                before=f"{before:,}",
                after=f"{after:,}",
                w0=duration_text(env, working[0]),
                w1=duration_text(env, working[1]),
                s0=duration_text(env, standby[0]),
                s1=duration_text(env, standby[1]),
                changed=sum(rows.mapped("changed")),
                new=sum(rows.mapped("appearing")),
                gone=sum(rows.mapped("vanishing")),
            )
            wizard.large_change = any(
                _large(row.sessions_before, row.sessions_after)
                or _large(row.standby_h_before, row.standby_h_after)
                for row in rows
            )

    @guarded(MANAGER, "write")
    def action_ask_apply(self):
        """The confirmation step: the numbers, then Apply or Back."""
        self.ensure_one()
        self.sudo().state = "confirm"
        return self._reopen()

    @guarded(MANAGER, "write")
    def action_back_to_preview(self):
        self.ensure_one()
        self.sudo().state = "preview"
        return self._reopen()


def _large(before, after):
    """Whether ``before`` -> ``after`` is a change of ``LARGE_FACTOR`` or more."""
    low, high = sorted((before, after))
    return high > 0 and (low == 0 or high / low >= LARGE_FACTOR)
