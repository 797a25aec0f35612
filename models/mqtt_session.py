# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A usage session: one period a machine was switched on.

Times are the meter's device time.  ``start_ts``/``end_ts``/``last_update_ts``
keep it exactly (float seconds); the Datetime fields are for people and
grouping.  The database guarantees the two promises the runner relies on:
at most one running session per machine, and never two sessions of one
machine starting at the same instant (a redelivered frame cannot duplicate).
How a session opens, changes, closes and is removed, and the hook other
addons react with: mqtt_session_lifecycle.py.
"""

import pytz

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..services.engine.timebase import to_utc
from ..services.engine.types import (
    END_REASONS,
    MANUAL,
    OFFLINE,
    POWER_DROP,
    TIMEOUT,
)
from .rights import MANAGER, USER, guarded
from .runner_signal import notify_runner

_END_REASON_LABELS = {
    POWER_DROP: "Power Drop",
    TIMEOUT: "Timeout",
    OFFLINE: "Meter Offline",
    MANUAL: "Manual",
}
END_REASON_SELECTION = [(reason, _END_REASON_LABELS[reason]) for reason in END_REASONS]
WEEKDAYS = [
    ("0", "Monday"),
    ("1", "Tuesday"),
    ("2", "Wednesday"),
    ("3", "Thursday"),
    ("4", "Friday"),
    ("5", "Saturday"),
    ("6", "Sunday"),
]


# What the runner, a person's start and stop and a recompute write (as
# superuser, through mqtt_session_lifecycle.py), never a client: a session is
# the machine's record.  Addons add theirs (``_server_fields``).
SERVER_FIELDS = frozenset(
    {
        "device_id",
        "start_time",
        "end_time",
        "start_ts",
        "end_ts",
        "last_update_ts",
        "state",
        "origin",
        "started_by_id",
        "stopped_by_id",
        "standby_duration_s",
        "working_duration_s",
        "energy_wh",
        "end_reason",
    }
)


class MqttSession(models.Model):
    _name = "mqtt.session"
    _description = "Machine Usage Session"
    _order = "start_time desc, id desc"
    _check_company_auto = True

    device_id = fields.Many2one(
        "mqtt.device",
        string="Machine",
        required=True,
        ondelete="restrict",
        index=True,
        check_company=True,
    )
    connection_id = fields.Many2one(related="device_id.connection_id", store=True)
    company_id = fields.Many2one(related="device_id.company_id", store=True, index=True)
    machine_type = fields.Selection(related="device_id.machine_type", store=True)
    location = fields.Char(related="device_id.location", store=True)
    start_time = fields.Datetime(required=True, index=True)
    end_time = fields.Datetime()
    start_ts = fields.Float(string="Start (device time)", required=True)
    end_ts = fields.Float(string="End (device time)")
    last_update_ts = fields.Float(
        string="Counted up to (device time)", help="Durations count up to here."
    )
    state = fields.Selection(
        [("running", "Running"), ("closed", "Closed")],
        default="running",
        required=True,
        index=True,
    )
    origin = fields.Selection(
        [("power", "Power Meter"), ("manual", "Manual")], default="power", required=True
    )
    started_by_id = fields.Many2one("res.users", readonly=True)
    stopped_by_id = fields.Many2one("res.users", readonly=True)
    standby_duration_s = fields.Float(string="Standby (s)", default=0.0)
    working_duration_s = fields.Float(string="Working (s)", default=0.0)
    total_duration_s = fields.Float(
        string="Duration (s)", compute="_compute_durations", store=True
    )
    standby_hours = fields.Float(
        string="Standby (h)",
        compute="_compute_durations",
        store=True,
        help="Switched on but not working, the stop delay at the end included: "
        "after the power drops below the standby threshold, the session waits "
        "the machine's stop delay for it to come back before it ends, and that "
        "wait counts as standby (the power curve shades it).",
    )
    working_hours = fields.Float(
        string="Working (h)", compute="_compute_durations", store=True
    )
    total_hours = fields.Float(
        string="Duration (h)", compute="_compute_durations", store=True
    )
    working_ratio = fields.Float(
        string="Working Share",
        compute="_compute_durations",
        store=True,
        aggregator="avg",
    )
    energy_wh = fields.Float(string="Energy (Wh)", default=0.0)
    energy_kwh = fields.Float(
        string="Energy (kWh)", compute="_compute_energy", store=True, digits=(16, 3)
    )
    avg_power_w = fields.Float(
        string="Average Power (W)",
        compute="_compute_energy",
        store=True,
        aggregator="avg",
        digits=(16, 1),
    )
    end_reason = fields.Selection(END_REASON_SELECTION)
    # For grouping by when in the week and the day sessions start (the web
    # client groups a date only by year to day): in the company's time zone
    # (its address's), UTC without one.
    start_weekday = fields.Selection(
        WEEKDAYS, string="Weekday", compute="_compute_start_local", store=True
    )
    start_hour = fields.Integer(
        string="Hour of Day",
        compute="_compute_start_local",
        store=True,
        aggregator=None,
        help="The hour the session started (0-23), in the company's time zone.",
    )
    start_exact = fields.Char(string="Start", compute="_compute_exact")
    end_exact = fields.Char(string="End", compute="_compute_exact")
    counted_to_exact = fields.Char(string="Counted Up To", compute="_compute_exact")
    working_exact = fields.Char(string="Working", compute="_compute_exact")
    standby_exact = fields.Char(string="Standby", compute="_compute_exact")

    @api.depends("start_time", "company_id.partner_id.tz")
    def _compute_start_local(self):
        # Computed for every session the runner creates: read only the time
        # zones (reading whole company and partner records cost more than
        # the rest of the create), and each company's once.
        companies = self.company_id | self.env.company
        companies.fetch(["partner_id"])
        companies.partner_id.fetch(["tz"])
        zones = {}  # company id -> time zone
        for rec in self:
            if not rec.start_time:
                rec.start_weekday = rec.start_hour = False
                continue
            company = rec.company_id
            zone = zones.get(company.id)
            if zone is None:
                name = company.partner_id.tz or self.env.company.partner_id.tz
                zone = zones[company.id] = pytz.timezone(name or "UTC")
            local = pytz.utc.localize(rec.start_time).astimezone(zone)
            rec.start_weekday = str(local.weekday())
            rec.start_hour = local.hour

    @api.depends(
        "start_ts",
        "end_ts",
        "last_update_ts",
        "working_duration_s",
        "standby_duration_s",
    )
    @api.depends_context("tz")
    def _compute_exact(self):
        """The device times to the hundredth of a second, in the reader's time
        zone, and durations in hours, minutes and seconds."""
        for rec in self:
            rec.start_exact = rec._exact_time(rec.start_ts)
            rec.end_exact = rec._exact_time(rec.end_ts)
            rec.counted_to_exact = rec._exact_time(rec.last_update_ts)
            rec.working_exact = _exact_duration(rec.working_duration_s)
            rec.standby_exact = _exact_duration(rec.standby_duration_s)

    def _exact_time(self, ts):
        if not ts:
            return False
        local = fields.Datetime.context_timestamp(self, to_utc(ts))
        return (
            local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 10000:02d}"
        )

    @api.depends("device_id.name", "start_time")
    @api.depends_context("tz")
    def _compute_display_name(self):
        # Not stored: the start is shown in the reader's time zone.
        for rec in self:
            start = (
                fields.Datetime.context_timestamp(rec, rec.start_time)
                if rec.start_time
                else None
            )
            stamp = start.strftime("%Y-%m-%d %H:%M") if start else ""
            rec.display_name = f"{rec.device_id.name or ''} {stamp}".strip()

    @api.depends("standby_duration_s", "working_duration_s")
    def _compute_durations(self):
        for rec in self:
            total = rec.standby_duration_s + rec.working_duration_s
            rec.total_duration_s = total
            rec.standby_hours = rec.standby_duration_s / 3600.0
            rec.working_hours = rec.working_duration_s / 3600.0
            rec.total_hours = total / 3600.0
            rec.working_ratio = rec.working_duration_s / total if total else 0.0

    @api.depends("energy_wh", "standby_duration_s", "working_duration_s")
    def _compute_energy(self):
        for rec in self:
            rec.energy_kwh = rec.energy_wh / 1000.0
            total = rec.standby_duration_s + rec.working_duration_s
            rec.avg_power_w = rec.energy_wh * 3600.0 / total if total else 0.0

    def init(self):
        # The runner and the UI both rely on these; only the database can promise them.
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS mqtt_session_one_running_per_device "
            "ON mqtt_session (device_id) WHERE state = 'running'"
        )
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS mqtt_session_device_start_unique "
            "ON mqtt_session (device_id, start_ts)"
        )

    def _check_company(self, fnames=None):
        """A session's company is its machine's (a related field), so its
        machine is never another company's: only the other fields (an
        addon's) are checked.  Skipping the machine halves a create's cost."""
        if fnames is None or {"company_id", "company_ids"} & set(fnames):
            fnames = self._fields
        return super()._check_company([f for f in fnames if f != "device_id"])

    @api.model
    def _server_fields(self):
        """The fields no client writes (SERVER_FIELDS; an addon adds its own)."""
        return SERVER_FIELDS

    @guarded(MANAGER, "write")
    def write(self, vals):
        if not self.env.su and self._server_fields() & set(vals):
            raise UserError(
                _(
                    "A session's machine, times, use and state are what the meter "
                    "said: recompute them instead (Configuration > Recompute "
                    "Sessions)."
                )
            )
        return super().write(vals)

    @guarded(MANAGER, "unlink")
    def unlink(self):
        if not self.env.su:
            raise UserError(
                _(
                    "Sessions are the machines' record and are not deleted by hand: "
                    "recompute them instead (Configuration > Recompute Sessions)."
                )
            )
        return super().unlink()

    @guarded(USER)
    def get_power_curve(self):
        """The session's power over time, for its form (with a margin around)."""
        self.ensure_one()
        start = self.start_ts
        end = self.end_ts or self.last_update_ts or start
        margin = max(60.0, (end - start) * 0.05)
        curve = self.sudo().device_id._power_curve(start - margin, end + margin)
        curve["session"] = [start * 1000.0, end * 1000.0]
        return curve

    @guarded(USER)
    def action_stop(self):
        # Closed as superuser: the rule lets only those who see it stop it.
        for rec in self:
            rec._close_manual()
        if self:
            notify_runner(self.env.cr)
        return True


def duration_text(env, seconds):
    """A duration as people read it, said as the web client says it
    (static/src/js/live_duration_field.js): "45 s", "8 min", "1 h 51 min"."""
    s = max(0, round(seconds or 0))
    if s < 60:
        return env._("%s s", s)
    minutes = round(s / 60)
    if minutes < 60:
        return env._("%s min", minutes)
    hours, rest = divmod(minutes, 60)
    if rest:
        return env._("%(h)s h %(m)s min", h=hours, m=rest)
    return env._("%s h", hours)


def _exact_duration(seconds):
    """``3723.5`` -> ``"1 h 02 min 03.50 s"``."""
    seconds = seconds or 0.0
    hours, rest = divmod(seconds, 3600.0)
    minutes, secs = divmod(rest, 60.0)
    if hours:
        return f"{int(hours)} h {int(minutes):02d} min {secs:05.2f} s"
    if minutes:
        return f"{int(minutes)} min {secs:05.2f} s"
    return f"{secs:.2f} s"
