# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Raw message log, for debugging a meter: what arrived and what we made of it.

Rows are bulk-inserted by the runner (only for devices with ``log_raw`` and
for rejected or unmatched frames, which an operator wants to see), payloads
are cut to a size guard, and a daily cron keeps the table bounded by age and
by row count.
"""

import logging

from odoo import api, fields, models

from ..services.engine.batch import RAW_STATUSES

_logger = logging.getLogger(__name__)

PARAM_RETENTION_DAYS = "open_workshop_mqtt.message_retention_days"
PARAM_MAX_ROWS = "open_workshop_mqtt.message_max_rows"
PARAM_MAX_PAYLOAD = "open_workshop_mqtt.message_max_payload_bytes"
DEFAULT_RETENTION_DAYS = 7
DEFAULT_MAX_ROWS = 1_000_000
DEFAULT_MAX_PAYLOAD = 4096
GC_CHUNK = 50_000
_STATUS_LABELS = {
    "reading": "Reading",
    "not_reading": "Not a Reading",
    "rejected": "Rejected",
    "unmatched": "No Matching Device",
    "rate_limited": "Rate-Limited",
    "duplicate": "Duplicate",
    "error": "Processing Error",
}


class MqttMessage(models.Model):
    _name = "mqtt.message"
    _description = "MQTT Raw Message"
    _order = "received_at desc, id desc"
    _rec_name = "topic"
    _log_access = False  # bulk-inserted by the runner; received_at is the timestamp

    connection_id = fields.Many2one(
        "mqtt.connection", ondelete="cascade", index=True, readonly=True
    )
    device_id = fields.Many2one(
        "mqtt.device", ondelete="cascade", index=True, readonly=True
    )
    company_id = fields.Many2one("res.company", index=True, readonly=True)
    topic = fields.Char(readonly=True)
    payload = fields.Text(readonly=True)
    payload_size = fields.Integer(string="Size (bytes)", readonly=True)
    truncated = fields.Boolean(readonly=True)
    qos = fields.Integer(string="QoS", readonly=True)
    received_at = fields.Datetime(index=True, readonly=True)
    device_ts = fields.Float(string="Device Time", readonly=True)
    status = fields.Selection(
        [(status, _STATUS_LABELS[status]) for status in RAW_STATUSES], readonly=True
    )
    detail = fields.Char(readonly=True)
    power_w = fields.Float(string="Power (W)", readonly=True)

    @api.model
    def _param_int(self, key, default):
        value = self.env["ir.config_parameter"].sudo().get_param(key, default)
        try:
            return int(value)
        except (TypeError, ValueError):
            _logger.warning(
                "System parameter %s=%r is not a number; using %s", key, value, default
            )
            return default

    @api.model
    def _gc_messages(self):
        """Cron: drop rows older than the retention period, then the oldest rows
        above the row cap. Works in chunks so a huge backlog does not lock long."""
        days = self._param_int(PARAM_RETENTION_DAYS, DEFAULT_RETENTION_DAYS)
        max_rows = self._param_int(PARAM_MAX_ROWS, DEFAULT_MAX_ROWS)
        cr = self.env.cr
        removed = 0
        if days > 0:
            while True:
                cr.execute(
                    "DELETE FROM mqtt_message WHERE id IN (SELECT id FROM mqtt_message "
                    "WHERE received_at < (now() at time zone 'UTC') "
                    "- make_interval(days => %s) LIMIT %s)",
                    (days, GC_CHUNK),
                )
                removed += cr.rowcount
                if cr.rowcount < GC_CHUNK:
                    break
        if max_rows > 0:
            cr.execute("SELECT count(*) FROM mqtt_message")
            excess = cr.fetchone()[0] - max_rows
            if excess > 0:
                cr.execute(
                    "DELETE FROM mqtt_message WHERE id IN (SELECT id FROM mqtt_message "
                    "ORDER BY received_at, id LIMIT %s)",
                    (excess,),
                )
                removed += cr.rowcount
        if removed:
            _logger.info("Raw MQTT log: removed %d old messages", removed)
        self.env.invalidate_all()
        return removed
