# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Guards for the machines nobody watches.

One guard watches one machine for one thing, with a threshold:

* ``left_on``: in standby longer than X minutes (switched on, idle);
* ``long_session``: a session longer than X minutes;
* ``silent``: its broker is connected but the machine said nothing for X
  minutes while it is polled (its meter or its network is down);
* ``off_hours``: in use outside the company's working hours (its
  ``resource.calendar``), for more than X minutes.

While the condition holds the guard has one alert: an activity for the
equipment's technician (or the guard's responsible) and a mark on the live
board; when it ends, the activity is marked done and the mark goes.  A cron
looks every minute.  ``preview_text`` says how often the guard would have
fired in the last 30 days, to choose X before turning it on.
"""

from datetime import timedelta

import pytz

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from odoo.addons.open_workshop_mqtt.models.rights import MANAGER, guarded
from odoo.addons.open_workshop_mqtt.services.engine.timebase import from_utc, to_utc

KINDS = [
    ("left_on", "Left On"),
    ("long_session", "Long Session"),
    ("silent", "Silent Meter"),
    ("off_hours", "Used Outside Working Hours"),
]
PREVIEW_DAYS = 30
# What the guard itself sets while it watches.
ALERT_FIELDS = frozenset({"alert_active", "alert_since", "activity_id"})


class MqttMaintenanceGuard(models.Model):
    _name = "mqtt.maintenance.guard"
    _description = "Machine Guard"
    _order = "device_id, kind"
    _check_company_auto = True
    _rec_names_search = ["device_id.name"]

    name = fields.Char(compute="_compute_name")
    active = fields.Boolean(default=True)
    device_id = fields.Many2one(
        "mqtt.device",
        string="Machine",
        required=True,
        ondelete="cascade",
        index=True,
        check_company=True,
    )
    company_id = fields.Many2one(related="device_id.company_id", store=True)
    kind = fields.Selection(KINDS, required=True, default="left_on")
    threshold_minutes = fields.Integer(
        string="After (minutes)",
        default=30,
        required=True,
        help="How long the condition must hold before the guard fires.",
    )
    user_id = fields.Many2one(
        "res.users",
        string="Responsible",
        help="Who gets the alert when the machine's equipment has no technician.",
    )
    alert_active = fields.Boolean(readonly=True, copy=False)
    alert_since = fields.Datetime(readonly=True, copy=False)
    activity_id = fields.Many2one("mail.activity", readonly=True, copy=False)
    preview_text = fields.Text(string="Last 30 Days", compute="_compute_preview")

    _sql_constraints = [
        (
            "kind_unique",
            "unique(device_id, kind)",
            "This machine has a guard of this kind already.",
        )
    ]

    @api.depends("kind", "threshold_minutes")
    @api.depends_context("lang")
    def _compute_name(self):
        labels = dict(self._fields["kind"]._description_selection(self.env))
        for guard in self:
            guard.name = _(
                "%(kind)s after %(minutes)s min",
                kind=labels.get(guard.kind, ""),
                minutes=guard.threshold_minutes,
            )

    @api.constrains("threshold_minutes")
    def _check_threshold(self):
        for guard in self:
            if guard.threshold_minutes < 1:
                raise ValidationError(_("A guard waits at least one minute."))

    @api.model_create_multi
    @guarded(MANAGER, "create")
    def create(self, vals_list):
        for vals in vals_list:
            self._check_alert_values(vals)
        return super().create(vals_list)

    @guarded(MANAGER, "write")
    def write(self, vals):
        self._check_alert_values(vals)
        res = super().write(vals)
        if vals.get("active") is False:
            # An archived guard watches no more: its alert ends with it.
            for guard in self.filtered("alert_active"):
                guard._resolve_alert()
        return res

    def _check_alert_values(self, vals):
        """A guard's alert is what it saw, never a client's."""
        if not self.env.su and ALERT_FIELDS & set(vals):
            raise UserError(_("A guard's alert is raised and ended by the guard."))

    # -- the condition, now ---------------------------------------------------------
    def _condition_since(self, now):
        """Since when the guard's condition holds (UTC naive), or None."""
        self.ensure_one()
        machine = self.device_id
        if self.kind == "left_on":
            if machine.current_state == "standby" and machine.state_since:
                return machine.state_since
            return None
        if self.kind == "long_session":
            return machine.running_since or None
        if self.kind == "silent":
            connection = machine.connection_id
            if (
                connection.state != "connected"
                or not machine.pollable
                or not machine.poll_interval_s
            ):
                return None
            return machine.last_message_time or connection.state_since or None
        if machine.running_since and not self._working_time(now):
            return max(machine.running_since, self._last_working_end(now))
        return None

    def _calendar(self):
        return (
            self.device_id.company_id.resource_calendar_id
            or self.env.company.resource_calendar_id
        )

    def _working_time(self, at):
        """Whether ``at`` (UTC naive) is in the company's working hours."""
        calendar = self._calendar()
        if not calendar:
            return True
        start = pytz.utc.localize(at - timedelta(minutes=1))
        end = pytz.utc.localize(at + timedelta(minutes=1))
        intervals = calendar._work_intervals_batch(start, end)[False]
        return any(a <= pytz.utc.localize(at) < b for a, b, _r in intervals)

    def _last_working_end(self, now):
        """When the last working interval before ``now`` ended (UTC naive)."""
        calendar = self._calendar()
        start = pytz.utc.localize(now - timedelta(days=7))
        intervals = calendar._work_intervals_batch(start, pytz.utc.localize(now))[False]
        ends = [b for _a, b, _r in intervals if b <= pytz.utc.localize(now)]
        if not ends:
            return now - timedelta(days=7)
        return max(ends).astimezone(pytz.utc).replace(tzinfo=None)

    # -- alerts ---------------------------------------------------------------------
    @api.model
    def _cron_watch(self):
        """Every minute: open the alerts that are due, resolve those that ended."""
        self.sudo().search([])._watch(fields.Datetime.now())

    def _watch(self, now):
        """Open the alerts that are due at ``now``, resolve those that ended
        (as superuser: a guard's alert is no one's edit)."""
        for guard in self.sudo():
            since = guard._condition_since(now)
            due = since is not None and now - since >= timedelta(
                minutes=guard.threshold_minutes
            )
            if due and not guard.alert_active:
                guard._open_alert(now)
            elif not due and guard.alert_active:
                guard._resolve_alert()

    def _open_alert(self, now):
        self.ensure_one()
        values = {"alert_active": True, "alert_since": now}
        equipment = self.env["maintenance.equipment"].search(
            [("mqtt_device_id", "=", self.device_id.id)], limit=1
        )
        user = equipment.technician_user_id or self.user_id
        if equipment and user:
            # In the words of the one who gets it.
            self = self.with_context(lang=user.lang)  # noqa: PLW0642
            activity = equipment.activity_schedule(
                "mail.mail_activity_data_todo",
                summary=_(
                    "%(machine)s: %(guard)s",
                    machine=self.device_id.name,
                    guard=self.name,
                ),
                note=self._alert_text(),
                user_id=user.id,
            )
            values["activity_id"] = activity.id
        self.write(values)

    def _resolve_alert(self):
        self.ensure_one()
        activity = self.activity_id.exists()
        equipment = self.device_id.equipment_ids
        if (
            activity
            and activity.res_model == "maintenance.equipment"
            and activity.res_id in equipment.ids
        ):
            activity.action_feedback(_("The condition ended by itself."))
        self.sudo().write(
            {"alert_active": False, "alert_since": False, "activity_id": False}
        )

    def _alert_text(self):
        self.ensure_one()
        texts = {
            "left_on": _(
                "It has been in standby for more than %s minutes: switched on, idle."
            ),
            "long_session": _("Its session has lasted more than %s minutes."),
            "silent": _(
                "Its broker is connected, but it has said nothing for more than %s "
                "minutes."
            ),
            "off_hours": _(
                "It has been in use outside working hours for more than %s minutes."
            ),
        }
        return texts[self.kind] % self.threshold_minutes

    # -- would it have fired? ---------------------------------------------------------
    @api.depends("kind", "threshold_minutes", "device_id")
    @api.depends_context("lang")
    def _compute_preview(self):
        now = fields.Datetime.now()
        for guard in self:
            if not guard.device_id:
                guard.preview_text = False
                continue
            # The reader's machine (an onchange may name any): its history is
            # then read as superuser.
            guard.device_id.check_access("read")
            spans = guard.sudo()._past_spans(now - timedelta(days=PREVIEW_DAYS), now)
            minimum = timedelta(minutes=guard.threshold_minutes)
            fired = [(a, b) for a, b in spans if b - a >= minimum]
            if not fired:
                guard.preview_text = _(
                    "It would not have fired in the last %s days.", PREVIEW_DAYS
                )
                continue
            minutes = int(max(b - a for a, b in fired).total_seconds() // 60)
            if len(fired) == 1:
                guard.preview_text = _(
                    "It would have fired once in the last %(days)s days (for "
                    "%(minutes)s minutes).",
                    days=PREVIEW_DAYS,
                    minutes=minutes,
                )
                continue
            guard.preview_text = _(
                "It would have fired %(count)s times in the last %(days)s days "
                "(the longest for %(minutes)s minutes).",
                count=len(fired),
                days=PREVIEW_DAYS,
                minutes=minutes,
            )

    def _past_spans(self, start, end):
        """[(from, to)] (UTC naive) when the condition held in [start, end]."""
        self.ensure_one()
        machine = self.device_id
        if self.kind in ("long_session", "off_hours"):
            sessions = self.env["mqtt.session"].search(
                [
                    ("device_id", "=", machine.id),
                    ("start_time", "<", end),
                    "|",
                    ("end_time", "=", False),
                    ("end_time", ">", start),
                ]
            )
            spans = [(s.start_time, s.end_time or end) for s in sessions]
            if self.kind == "long_session":
                return spans
            return [part for span in spans for part in self._outside_hours(*span)]
        curve = machine._power_curve(from_utc(start), from_utc(end))
        state = "standby" if self.kind == "left_on" else "nodata"
        return [
            (to_utc(a / 1000.0), to_utc(b / 1000.0))
            for a, b, s in curve["spans"]
            if s == state
        ]

    def _outside_hours(self, start, end):
        """The parts of [start, end] (UTC naive) outside working hours."""
        calendar = self._calendar()
        if not calendar:
            return []
        aware = pytz.utc.localize
        intervals = sorted(
            (
                a.astimezone(pytz.utc).replace(tzinfo=None),
                b.astimezone(pytz.utc).replace(tzinfo=None),
            )
            for a, b, _r in calendar._work_intervals_batch(aware(start), aware(end))[
                False
            ]
        )
        parts, cursor = [], start
        for a, b in intervals:
            if a > cursor:
                parts.append((cursor, min(a, end)))
            cursor = max(cursor, b)
        if cursor < end:
            parts.append((cursor, end))
        return parts

    @guarded(MANAGER, "write")
    def action_watch_now(self):
        self.sudo()._watch(fields.Datetime.now())
        return True
