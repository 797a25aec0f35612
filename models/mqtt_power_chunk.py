# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A sealed run of one machine's power history (services/engine/history.py).

The runner inserts a chunk whenever a machine's history tail (kept on the
machine, ``mqtt.device.history_tail``) is full; rows are never changed after,
only deleted by the nightly retention job, per company.  Readers go through
``mqtt.device._history_runs``: the chunks of a time range, then the tail.
"""

import logging
import time

from odoo import api, fields, models

_logger = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 400
GC_CHUNK = 5000


class MqttPowerChunk(models.Model):
    _name = "mqtt.power.chunk"
    _description = "Machine Power History (compressed chunk)"
    _order = "device_id, first_ts, id"
    _log_access = False  # inserted by the runner, in bulk

    device_id = fields.Many2one(
        "mqtt.device", required=True, ondelete="cascade", index=True, readonly=True
    )
    company_id = fields.Many2one("res.company", index=True, readonly=True)
    first_ts = fields.Float(string="From (device time)", readonly=True)
    last_ts = fields.Float(string="To (device time)", readonly=True, index=True)
    count = fields.Integer(string="Records", readonly=True)

    def init(self):
        # The compressed records, and a machine's tail not yet sealed: raw
        # bytea columns the runner writes and the history readers read by
        # SQL, not ORM fields (an ORM Binary holds base64 text).
        self.env.cr.execute(
            "ALTER TABLE mqtt_power_chunk ADD COLUMN IF NOT EXISTS data bytea;"
            "ALTER TABLE mqtt_device ADD COLUMN IF NOT EXISTS history_tail bytea;"
            "CREATE INDEX IF NOT EXISTS mqtt_power_chunk_device_span "
            "ON mqtt_power_chunk (device_id, first_ts, last_ts)"
        )

    @api.model
    def _gc_history(self):
        """Cron: drop the chunks past each company's retention (0 keeps all)."""
        removed = 0
        cr = self.env.cr
        for company in self.env["res.company"].sudo().search([]):
            days = company.owm_history_retention_days
            if days <= 0:
                continue
            cutoff = time.time() - days * 86400.0
            while True:
                cr.execute(
                    "DELETE FROM mqtt_power_chunk WHERE id IN ("
                    " SELECT c.id FROM mqtt_power_chunk c"
                    " JOIN mqtt_device d ON d.id = c.device_id"
                    " WHERE c.last_ts < %s"
                    " AND COALESCE(c.company_id, d.company_id) = %s"
                    " LIMIT %s)",
                    (cutoff, company.id, GC_CHUNK),
                )
                removed += cr.rowcount
                if cr.rowcount < GC_CHUNK:
                    break
        if removed:
            _logger.info("Power history: %d chunks past retention removed", removed)
        return removed
