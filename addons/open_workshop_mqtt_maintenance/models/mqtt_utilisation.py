# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Utilisation: a machine's working hours against the workshop's opening
hours, per week (Analytics > Utilisation).

Opening hours are the company's working calendar (``resource.calendar``,
the same the off-hours guard reads); a session counts in the week it
started (as everywhere in the analytics).  Rows are made when the menu is
opened, for the weeks asked, from the sessions the user may see."""

from datetime import datetime, time, timedelta

import pytz

from odoo import _, api, fields, models
from odoo.exceptions import AccessError

from odoo.addons.open_workshop_mqtt.models.rights import USER, guarded

WEEKS = 8
MAX_WEEKS = 104


class MqttUtilisation(models.TransientModel):
    _name = "mqtt.utilisation"
    _description = "Machine Utilisation against Opening Hours"
    _order = "week desc, utilisation desc"

    device_id = fields.Many2one("mqtt.device", string="Machine", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    week = fields.Date(string="Week of", readonly=True)
    working_hours = fields.Float(readonly=True)
    opening_hours = fields.Float(readonly=True)
    utilisation = fields.Float(
        readonly=True,
        aggregator="avg",
        help="Working hours / opening hours of the week.",
    )

    @api.model
    @guarded(USER, None)
    def action_open(self, weeks=WEEKS):
        """Make this user's rows for the last ``weeks`` weeks and show them."""
        weeks = min(max(int(weeks), 1), MAX_WEEKS)
        rows = self._rows(weeks)
        self.search([("create_uid", "=", self.env.uid)]).sudo().unlink()
        # Rows are made here alone (as superuser; still the user's own).
        created = self.sudo().create(rows).sudo(False)
        return {
            "type": "ir.actions.act_window",
            "name": _("Utilisation"),
            "res_model": self._name,
            "view_mode": "pivot,graph,list",
            "domain": [("id", "in", created.ids)],
            "context": {"search_default_group_device": 1},
        }

    @api.model_create_multi
    @guarded(USER, "create")
    def create(self, vals_list):
        if not self.env.su:
            raise AccessError(_("Utilisation rows are made when Utilisation opens."))
        return super().create(vals_list)

    @guarded(USER, "write")
    def write(self, vals):
        if not self.env.su:
            raise AccessError(_("Utilisation rows are made when Utilisation opens."))
        return super().write(vals)

    @api.model
    def _rows(self, weeks):
        """The values of each machine's weeks (the machines the user sees)."""
        tz = pytz.timezone(self.env.user.tz or "UTC")
        today = datetime.now(tz).date()
        monday = today - timedelta(days=today.weekday())
        first = monday - timedelta(weeks=weeks - 1)
        machines = self.env["mqtt.device"].search([])
        sessions = self.env["mqtt.session"].search_read(
            [
                ("device_id", "in", machines.ids),
                ("start_time", ">=", _utc(tz, first)),
            ],
            ["device_id", "start_time", "working_duration_s"],
        )
        working = {}
        for s in sessions:
            local = pytz.utc.localize(s["start_time"]).astimezone(tz).date()
            week = local - timedelta(days=local.weekday())
            key = (s["device_id"][0], week)
            working[key] = working.get(key, 0.0) + s["working_duration_s"] / 3600.0
        rows = []
        for machine in machines:
            company = machine.company_id or self.env.company
            for n in range(weeks):
                week = first + timedelta(weeks=n)
                opening = _opening_hours(company, tz, week)
                hours = working.get((machine.id, week), 0.0)
                rows.append(
                    {
                        "device_id": machine.id,
                        "company_id": company.id,
                        "week": week,
                        "working_hours": hours,
                        "opening_hours": opening,
                        "utilisation": hours / opening if opening else 0.0,
                    }
                )
        return rows


def _utc(tz, day):
    """Midnight of ``day`` in ``tz``, as naive UTC."""
    local = tz.localize(datetime.combine(day, time.min))
    return local.astimezone(pytz.utc).replace(tzinfo=None)


def _opening_hours(company, tz, monday):
    """The company's working hours in the week starting ``monday``."""
    calendar = company.resource_calendar_id
    if not calendar:
        return 0.0
    start = tz.localize(datetime.combine(monday, time.min))
    end = start + timedelta(days=7)
    intervals = calendar._work_intervals_batch(start, end)[False]
    return sum((b - a).total_seconds() for a, b, _r in intervals) / 3600.0
