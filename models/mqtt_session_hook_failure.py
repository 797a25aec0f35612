# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A reaction to closed sessions that failed (``_on_sessions_closed``).

The close stood; what the reacting addon meant to do did not happen.  Kept
here for managers (Configuration > Failed Session Reactions), counted, and
tried again by a cron (and by hand) until it runs through or has been tried
``MAX_ATTEMPTS`` times.  See models/mqtt_session_lifecycle.py.
"""

import logging
import traceback

from odoo import api, fields, models

from .mqtt_session_lifecycle import ORIGINS, SessionChange
from .rights import MANAGER, guarded

_logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10


class MqttSessionHookFailure(models.Model):
    _name = "mqtt.session.hook.failure"
    _description = "Failed Reaction to Closed Sessions"
    _order = "id desc"

    session_ids = fields.Many2many("mqtt.session", string="Sessions", readonly=True)
    device_id = fields.Many2one(
        "mqtt.device", string="Machine", readonly=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="device_id.company_id", store=True)
    origin = fields.Selection(
        [(o, o.capitalize()) for o in ORIGINS], readonly=True, required=True
    )
    changes = fields.Json(readonly=True, help="A recompute's changes (before/after).")
    error = fields.Char(readonly=True)
    detail = fields.Text(string="Traceback", readonly=True)
    attempts = fields.Integer(readonly=True, default=1)
    last_attempt = fields.Datetime(readonly=True, default=fields.Datetime.now)

    @api.model
    def _record(self, sessions, origin, changes, error):
        """Keep a failed call (as superuser: it is the addon's own record)."""
        device = sessions[:1].device_id.id or (
            changes[0].device_id if changes else False
        )
        return self.create(
            {
                "session_ids": [(6, 0, sessions.ids)],
                "device_id": device,
                "origin": origin,
                "changes": [_change_json(c) for c in changes] or False,
                **_error_values(error),
            }
        )

    def _retry(self):
        """Call the hook again for each; drop those that run through."""
        for failure in self:
            sessions = failure.session_ids.exists()
            changes = [SessionChange(**c) for c in failure.changes or []]
            error = sessions._call_hook(failure.origin, changes)
            if error is None:
                failure.unlink()
                continue
            failure.write(
                {
                    "attempts": failure.attempts + 1,
                    "last_attempt": fields.Datetime.now(),
                    **_error_values(error),
                }
            )

    @guarded(MANAGER, "write")
    def action_retry(self):
        self.sudo()._retry()
        return True

    @api.model
    def _retry_hook_failures(self):
        """The cron: try the failed calls again (after an addon's fix)."""
        failures = self.search([("attempts", "<", MAX_ATTEMPTS)], limit=200)
        if failures:
            _logger.info("Trying %d failed session reactions again", len(failures))
            failures._retry()


def _change_json(change):
    return {
        "session_id": change.session_id,
        "device_id": change.device_id,
        "before": change.before,
        "after": change.after,
    }


def _error_values(error):
    return {
        "error": f"{type(error).__name__}: {error}"[:250],
        "detail": "".join(traceback.format_exception(error))[-20000:],
    }
