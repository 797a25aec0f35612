# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""React to closed sessions: the whole of it.

Inherit ``mqtt.session``, override ``_on_sessions_closed`` and call
``super()``.  It runs once per closed session, after the write and in its
transaction (README, "Extending"); here it keeps a row per session.
"""

from odoo import fields, models


class MqttSession(models.Model):
    _inherit = "mqtt.session"

    def _on_sessions_closed(self, origin, changes=()):
        super()._on_sessions_closed(origin, changes)
        self.env["owm.session.hook.example"].create(
            [
                {
                    "session_id": session.id,
                    "origin": origin,
                    "working_hours": session.working_hours,
                    "changes": len(changes),
                }
                for session in self
            ]
        )


class SessionHookExample(models.Model):
    _name = "owm.session.hook.example"
    _description = "A closed session, as an addon saw it"

    session_id = fields.Many2one("mqtt.session", ondelete="set null", index=True)
    origin = fields.Char()
    working_hours = fields.Float()
    changes = fields.Integer()
