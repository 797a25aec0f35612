# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A machine's usage totals follow its sessions' writes by what they change.

Summed again at every write (a stored compute), a running session's progress
(every 30 s) read its machine's whole history: 12 such writes in one flush,
machines of 20,000 sessions each, cost the database 50 ms.  Each create,
write and unlink of a session now adds its difference to its machine's
totals in one UPDATE; ``mqtt.device._recompute_usage`` sums them exactly
(a recompute of the sessions ends with it).
"""

from collections import defaultdict

from odoo import api, models

from .mqtt_device import USAGE_FIELDS, USAGE_SCALES, USAGE_TOTALS
from .rights import MANAGER, guarded

_TOUCHING = frozenset((*USAGE_FIELDS, "device_id"))


class MqttSession(models.Model):
    _inherit = "mqtt.session"

    @api.model_create_multi
    @guarded(MANAGER, "create")
    def create(self, vals_list):
        sessions = super().create(vals_list)
        _add(sessions.env, sessions._usage(), 1)
        return sessions

    @guarded(MANAGER, "write")
    def write(self, vals):
        if not _TOUCHING.intersection(vals):
            return super().write(vals)
        before = self._usage()
        result = super().write(vals)
        after = self._usage()
        _add(self.env, before, -1, after)
        return result

    @guarded(MANAGER, "unlink")
    def unlink(self):
        before = self._usage()
        env = self.env
        result = super().unlink()
        _add(env, before, -1)
        return result

    def _usage(self):
        """{machine id: [sessions, working s, standby s, energy Wh]} of these."""
        usage = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
        for session in self:
            row = usage[session.device_id.id]
            row[0] += 1
            for i, name in enumerate(USAGE_FIELDS, 1):
                row[i] += session[name] or 0.0
        return usage


def _add(env, usage, sign, then=None):
    """Add ``sign`` times ``usage`` (and ``then``) to the machines' totals."""
    deltas = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for source, factor in ((usage, sign), (then or {}, 1)):
        for device_id, row in source.items():
            delta = deltas[device_id]
            for i, value in enumerate(row):
                delta[i] += factor * value
    rows = [
        (
            device_id,
            *(value * scale for value, scale in zip(delta, USAGE_SCALES, strict=True)),
        )
        for device_id, delta in sorted(deltas.items())  # a stable lock order
        if device_id and any(delta)
    ]
    if not rows:
        return
    machines = env["mqtt.device"].browse([r[0] for r in rows])
    machines.flush_recordset(list(USAGE_TOTALS))  # (nothing else writes them)
    for device_id, count, working, standby, energy in rows:
        env.cr.execute(
            "UPDATE mqtt_device SET session_count = COALESCE(session_count, 0) + %s, "
            "total_working_hours = COALESCE(total_working_hours, 0) + %s, "
            "total_standby_hours = COALESCE(total_standby_hours, 0) + %s, "
            "total_energy_kwh = COALESCE(total_energy_kwh, 0) + %s WHERE id = %s",
            (round(count), working, standby, energy, device_id),
        )
    machines.invalidate_recordset(list(USAGE_TOTALS), flush=False)
