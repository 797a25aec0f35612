# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A piece of equipment that is a workshop machine, and its usage meters.

The meters are derived from the machine's sessions, never from the power
meter's own counter: a meter swapped, a Shelly counter reset or a device
paired anew changes nothing.  They grow as sessions close (the session
hook, origin "runner" or "manual": each session counted once, in the
transaction of its close) and follow a recompute of past sessions by its
changes (origin "recompute"), so they always equal the sum of the machine's
closed sessions; apart from such a correction they never go backwards.
``_recount_meters`` sums them from the sessions (when a machine is linked).
"""

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from odoo.addons.open_workshop_mqtt.models.rights import MANAGER, USER, guarded

# The meters: session field -> equipment field (and its unit's divisor).
METERS = {
    "working_duration_s": ("mqtt_working_hours", 3600.0),
    "standby_duration_s": ("mqtt_standby_hours", 3600.0),
    "energy_wh": ("mqtt_energy_kwh", 1000.0),
}


# What the sessions and done requests set, never a person.
DERIVED = {
    "mqtt_working_hours",
    "mqtt_standby_hours",
    "mqtt_session_count",
    "mqtt_energy_kwh",
    "mqtt_base_working_hours",
    "mqtt_base_standby_hours",
    "mqtt_base_session_count",
    "mqtt_base_energy_kwh",
    "mqtt_last_preventive_date",
}


class MaintenanceEquipment(models.Model):
    _inherit = "maintenance.equipment"

    mqtt_device_id = fields.Many2one(
        "mqtt.device",
        string="Workshop Machine",
        check_company=True,
        index=True,
        copy=False,
        help="The machine behind a power meter whose sessions this equipment's "
        "usage meters count.",
    )
    mqtt_working_hours = fields.Float(
        string="Working Hours (lifetime)",
        readonly=True,
        copy=False,
        help="Time under load in all of the machine's closed sessions. Derived "
        "from the sessions: a meter swap or reset changes nothing.",
    )
    mqtt_standby_hours = fields.Float(
        string="Standby Hours (lifetime)", readonly=True, copy=False
    )
    mqtt_session_count = fields.Integer(
        string="Sessions (lifetime)", readonly=True, copy=False
    )
    mqtt_energy_kwh = fields.Float(
        string="Energy (lifetime, kWh)", readonly=True, copy=False
    )
    # What the meters said when the last preventive maintenance was done.
    mqtt_base_working_hours = fields.Float(
        string="Working Hours at Last Maintenance", readonly=True, copy=False
    )
    mqtt_base_standby_hours = fields.Float(
        string="Standby Hours at Last Maintenance", readonly=True, copy=False
    )
    mqtt_base_session_count = fields.Integer(
        string="Sessions at Last Maintenance", readonly=True, copy=False
    )
    mqtt_base_energy_kwh = fields.Float(
        string="Energy at Last Maintenance (kWh)", readonly=True, copy=False
    )
    mqtt_last_preventive_date = fields.Date(
        string="Last Preventive Maintenance", readonly=True, copy=False
    )
    mqtt_working_hours_since = fields.Float(
        string="Working Hours (since maintenance)", compute="_compute_since"
    )
    mqtt_standby_hours_since = fields.Float(
        string="Standby Hours (since maintenance)", compute="_compute_since"
    )
    mqtt_session_count_since = fields.Integer(
        string="Sessions (since maintenance)", compute="_compute_since"
    )
    mqtt_energy_kwh_since = fields.Float(
        string="Energy (since maintenance, kWh)", compute="_compute_since"
    )
    mqtt_plan_ids = fields.One2many(
        "mqtt.maintenance.plan", "equipment_id", string="Maintenance Plans"
    )
    mqtt_current_state = fields.Selection(related="mqtt_device_id.current_state")
    mqtt_current_power_w = fields.Float(related="mqtt_device_id.current_power_w")
    mqtt_online = fields.Boolean(related="mqtt_device_id.online")
    mqtt_running_since = fields.Datetime(related="mqtt_device_id.running_since")
    mqtt_guard_alert = fields.Char(related="mqtt_device_id.guard_alert")

    _sql_constraints = [
        (
            "mqtt_device_unique",
            "unique(mqtt_device_id)",
            "This machine is another equipment's already.",
        )
    ]

    @api.depends(
        "mqtt_working_hours",
        "mqtt_standby_hours",
        "mqtt_session_count",
        "mqtt_energy_kwh",
        "mqtt_base_working_hours",
        "mqtt_base_standby_hours",
        "mqtt_base_session_count",
        "mqtt_base_energy_kwh",
    )
    def _compute_since(self):
        for rec in self:
            rec.mqtt_working_hours_since = max(
                0.0, rec.mqtt_working_hours - rec.mqtt_base_working_hours
            )
            rec.mqtt_standby_hours_since = max(
                0.0, rec.mqtt_standby_hours - rec.mqtt_base_standby_hours
            )
            rec.mqtt_session_count_since = max(
                0, rec.mqtt_session_count - rec.mqtt_base_session_count
            )
            rec.mqtt_energy_kwh_since = max(
                0.0, rec.mqtt_energy_kwh - rec.mqtt_base_energy_kwh
            )

    @api.constrains("mqtt_device_id", "company_id")
    def _check_machine_company(self):
        for rec in self:
            machine = rec.mqtt_device_id
            if machine and machine.company_id and machine.company_id != rec.company_id:
                raise ValidationError(
                    _("%s belongs to another company.", machine.display_name)
                )

    @api.model_create_multi
    @guarded(None, "create")
    def create(self, vals_list):
        for vals in vals_list:
            self._check_mqtt_values(vals)
        records = super().create(vals_list)
        records.filtered("mqtt_device_id").sudo()._recount_meters()
        return records

    @guarded(None, "write")
    def write(self, vals):
        self._check_mqtt_values(vals)
        res = super().write(vals)
        if "mqtt_device_id" in vals:
            self.sudo()._recount_meters()
        return res

    def _check_mqtt_values(self, vals):
        """The meters are the sessions' sums: nobody writes them by hand; a
        workshop manager links a machine."""
        if self.env.su:
            return
        if DERIVED & set(vals):
            raise UserError(_("The usage meters are counted from the sessions."))
        if "mqtt_device_id" in vals:
            if not self.env.user.has_group(MANAGER):
                raise AccessError(
                    _("Only a workshop manager links a workshop machine.")
                )
            # One they may see (another company's is refused here, before
            # the database is asked).
            self.env["mqtt.device"].browse(vals["mqtt_device_id"]).check_access("read")

    # -- the meters ----------------------------------------------------------------
    def _add_to_meters(self, sessions, sign=1):
        """Count closed ``sessions`` into the meters (``sign`` -1: take out)."""
        for rec in self:
            mine = sessions.filtered(
                lambda s, rec=rec: s.device_id == rec.mqtt_device_id
            )
            if not mine:
                continue
            rec._shift_meters(
                {
                    field: sign * sum(mine.mapped(session_field)) / divisor
                    for session_field, (field, divisor) in METERS.items()
                },
                sign * len(mine),
            )

    def _shift_meters(self, amounts, sessions):
        self.ensure_one()
        values = {field: self[field] + amount for field, amount in amounts.items()}
        values["mqtt_session_count"] = self.mqtt_session_count + sessions
        self.write(values)

    def _recount_meters(self):
        """The meters as the sum of the machine's closed sessions."""
        groups = dict(
            (device, rest)
            for device, *rest in self.env["mqtt.session"]
            .sudo()
            ._read_group(
                [
                    ("device_id", "in", self.mqtt_device_id.ids),
                    ("state", "=", "closed"),
                ],
                ["device_id"],
                ["__count", *(f"{f}:sum" for f in METERS)],
            )
        )
        for rec in self:
            count, *sums = groups.get(rec.mqtt_device_id, (0, 0.0, 0.0, 0.0))
            values = {"mqtt_session_count": count}
            for (field, divisor), total in zip(METERS.values(), sums, strict=True):
                values[field] = (total or 0.0) / divisor
            rec.write(values)

    def _rebase(self, on_date):
        """A preventive maintenance was done: 'since maintenance' starts again."""
        for rec in self:
            rec.write(
                {
                    "mqtt_base_working_hours": rec.mqtt_working_hours,
                    "mqtt_base_standby_hours": rec.mqtt_standby_hours,
                    "mqtt_base_session_count": rec.mqtt_session_count,
                    "mqtt_base_energy_kwh": rec.mqtt_energy_kwh,
                    "mqtt_last_preventive_date": on_date,
                }
            )

    # -- buttons ----------------------------------------------------------------------
    @guarded(MANAGER)
    def action_recount_meters(self):
        """Sum the meters from the sessions again (after an import)."""
        self.sudo()._recount_meters()
        return True

    @guarded(USER)
    def action_view_mqtt_sessions(self):
        self.ensure_one()
        return self.mqtt_device_id.action_view_sessions()
