# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Maintenance by use: every N working hours and/or every M days, whichever
comes first.

When a plan falls due it opens exactly one preventive maintenance request
(``maintenance.request.mqtt_plan_id``): never two, also with prefork
workers and two nodes on one database (the plan row is locked while it is
checked, and the database refuses a second open request per plan).  A due
plan is seen when a session of its machine closes (the session hook) and
by a cron every 5 minutes (the days, and any missed).  The request marked
done re-bases the plan on the meter at that moment.  Override
``_prepare_request_values`` to shape the request (as OCA maintenance_plan's
``_prepare_request_from_plan``).
"""

import logging
from datetime import timedelta

from markupsafe import Markup
from psycopg2 import IntegrityError

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import mute_logger

from odoo.addons.open_workshop_mqtt.models.rights import MANAGER, guarded

_logger = logging.getLogger(__name__)

# Where a plan counts from: set at creation, moved by a done request only.
COUNTED_FROM = {"base_working_hours", "base_date"}


class MqttMaintenancePlan(models.Model):
    _name = "mqtt.maintenance.plan"
    _description = "Maintenance Plan by Working Hours"
    _order = "equipment_id, id"
    _check_company_auto = True

    name = fields.Char(required=True, help="What is done, e.g. 'Clean the lens'.")
    active = fields.Boolean(default=True)
    equipment_id = fields.Many2one(
        "maintenance.equipment",
        required=True,
        ondelete="cascade",
        index=True,
        check_company=True,
    )
    company_id = fields.Many2one(related="equipment_id.company_id", store=True)
    device_id = fields.Many2one(
        related="equipment_id.mqtt_device_id",
        string="Machine",
        store=True,
        compute_sudo=False,
    )
    interval_working_hours = fields.Float(
        string="Every (working hours)",
        default=0.0,
        help="Due after this many working hours since the last one (0: not by "
        "working hours).",
    )
    interval_days = fields.Integer(
        string="Every (days)",
        default=0,
        help="Due after this many days since the last one (0: not by days). With "
        "both, whichever comes first.",
    )
    maintenance_team_id = fields.Many2one(
        "maintenance.team", string="Team", check_company=True
    )
    note = fields.Html(help="What to do; copied into each request.")
    base_working_hours = fields.Float(
        string="Counted From (working hours)",
        help="The machine's working hours when this plan last started counting: "
        "its working hours now for a new plan, or what they were when it was "
        "last done. Moves on each done request.",
    )
    base_date = fields.Date(
        string="Counted From (date)",
        default=fields.Date.context_today,
        required=True,
        help="When this plan last started counting: today for a new plan, or "
        "when it was last done. Moves on each done request.",
    )
    request_ids = fields.One2many("maintenance.request", "mqtt_plan_id")
    open_request_id = fields.Many2one("maintenance.request", compute="_compute_status")
    due_working_hours = fields.Float(
        string="Due At (working hours)", compute="_compute_status"
    )
    due_date = fields.Date(string="Due On", compute="_compute_status")
    remaining_working_hours = fields.Float(
        string="Working Hours Left", compute="_compute_status"
    )
    state = fields.Selection(
        [("ok", "Not Due"), ("due", "Due"), ("requested", "Requested")],
        compute="_compute_status",
    )

    @api.constrains("interval_working_hours", "interval_days")
    def _check_intervals(self):
        for plan in self:
            if plan.interval_working_hours < 0 or plan.interval_days < 0:
                raise ValidationError(_("Intervals cannot be negative."))
            if not plan.interval_working_hours and not plan.interval_days:
                raise ValidationError(
                    _(
                        "%s: give working hours, days, or both (whichever comes "
                        "first).",
                        plan.name,
                    )
                )

    @api.depends(
        "interval_working_hours",
        "interval_days",
        "base_working_hours",
        "base_date",
        "equipment_id.mqtt_working_hours",
        "request_ids.mqtt_plan_open",
    )
    def _compute_status(self):
        today = fields.Date.context_today(self)
        for plan in self:
            plan.open_request_id = plan.request_ids.filtered("mqtt_plan_open")[:1]
            hours = plan.interval_working_hours
            plan.due_working_hours = plan.base_working_hours + hours if hours else 0.0
            plan.remaining_working_hours = (
                plan.due_working_hours - plan.equipment_id.mqtt_working_hours
                if hours
                else 0.0
            )
            plan.due_date = (
                plan.base_date + timedelta(days=plan.interval_days)
                if plan.interval_days and plan.base_date
                else False
            )
            if plan.open_request_id:
                plan.state = "requested"
            elif plan._is_due(today):
                plan.state = "due"
            else:
                plan.state = "ok"

    def _is_due(self, today):
        self.ensure_one()
        meter = self.equipment_id.mqtt_working_hours
        by_hours = bool(self.interval_working_hours) and (
            meter >= self.base_working_hours + self.interval_working_hours
        )
        by_days = (
            bool(self.interval_days)
            and bool(self.base_date)
            and (today >= self.base_date + timedelta(days=self.interval_days))
        )
        return by_hours or by_days

    @api.model_create_multi
    @guarded(MANAGER, "create")
    def create(self, vals_list):
        Equipment = self.env["maintenance.equipment"]
        today = fields.Date.context_today(self)
        for vals in vals_list:
            equipment = Equipment.browse(vals.get("equipment_id"))
            equipment.check_access("read")
            meter = equipment.sudo().mqtt_working_hours
            if "base_working_hours" not in vals:
                # It counts from the machine's working hours now.
                vals["base_working_hours"] = meter
            elif not 0.0 <= (vals["base_working_hours"] or 0.0) <= meter + 1e-9:
                raise ValidationError(
                    _(
                        "It was last done at %(base).1f working hours, but the "
                        "machine has %(meter).1f: say when it was last done, "
                        "up to now.",
                        base=vals["base_working_hours"] or 0.0,
                        meter=meter,
                    )
                )
            base_date = fields.Date.to_date(vals.get("base_date"))
            if base_date and base_date > today:
                raise ValidationError(_("A plan cannot count from a future day."))
        return super().create(vals_list)

    @guarded(MANAGER, "write")
    def write(self, vals):
        if not self.env.su and (COUNTED_FROM | {"equipment_id"}) & set(vals):
            # A plan counts from where it was created or last done; moving
            # that by hand would hide or fake a due plan.
            raise UserError(
                _(
                    "A plan counts from its creation or its last done request, for "
                    "its equipment: make a new plan for another."
                )
            )
        return super().write(vals)

    # -- falling due --------------------------------------------------------------
    def _check_due(self):
        """Open a request for each due plan without an open one; returns the
        requests opened.

        Two checks at once (two workers, two nodes, the runner's hook and
        the cron) open one request: a plan another transaction is checking
        right now is skipped (it is locked), and the database refuses a
        second open request of a plan (the partial unique index of
        ``maintenance_request``) when the other check committed after this
        transaction began; both are quiet, expected outcomes.  A plan
        skipped by a check that then rolls back is seen by the next cron."""
        today = fields.Date.context_today(self)
        requests = self.env["maintenance.request"].sudo()
        opened = requests.browse()
        for plan in self.filtered("active"):
            self.env.cr.execute(
                "SELECT id FROM mqtt_maintenance_plan WHERE id = %s "
                "FOR UPDATE SKIP LOCKED",
                (plan.id,),
            )
            if not self.env.cr.fetchone():
                continue
            plan.invalidate_recordset(["request_ids"])
            plan.request_ids.invalidate_recordset(["mqtt_plan_open"])
            if plan.request_ids.filtered("mqtt_plan_open") or not plan._is_due(today):
                continue
            try:
                # (The insert is flushed when the savepoint ends: a refusal
                # comes there, and the request is then not ours.)
                with mute_logger("odoo.sql_db"), self.env.cr.savepoint():
                    request = requests.create(plan._prepare_request_values())
            except IntegrityError:
                _logger.info("Plan %s: another check opened its request", plan.id)
                continue
            opened |= request
        return opened

    def _prepare_request_values(self):
        """The values of the request a due plan opens (override to add)."""
        self.ensure_one()
        equipment = self.equipment_id
        why = []
        if self.interval_working_hours:
            why.append(
                _(
                    "%(hours).1f of %(interval).1f working hours",
                    hours=equipment.mqtt_working_hours - self.base_working_hours,
                    interval=self.interval_working_hours,
                )
            )
        if self.interval_days:
            why.append(
                _(
                    "%(days)s of %(interval)s days",
                    days=(fields.Date.context_today(self) - self.base_date).days,
                    interval=self.interval_days,
                )
            )
        values = {
            "name": _(
                "%(plan)s: %(equipment)s", plan=self.name, equipment=equipment.name
            ),
            "equipment_id": equipment.id,
            "company_id": equipment.company_id.id or self.env.company.id,
            "maintenance_type": "preventive",
            "mqtt_plan_id": self.id,
            # The note is HTML: the reason joins it as a paragraph (escaped).
            "description": (self.note or Markup())
            + Markup("<p>%s</p>") % _("Due by use: %s.", ", ".join(why)),
            "schedule_date": fields.Datetime.now(),
            "user_id": equipment.technician_user_id.id,
        }
        team = self.maintenance_team_id or equipment.maintenance_team_id
        if team:
            values["maintenance_team_id"] = team.id
        return values

    def _rebase(self, request):
        """``request`` of this plan is done: count again from here."""
        equipment = self.equipment_id
        self.write(
            {
                "base_working_hours": equipment.mqtt_working_hours,
                "base_date": request.close_date or fields.Date.context_today(self),
            }
        )
        equipment._rebase(request.close_date or fields.Date.context_today(self))

    @api.model
    def _cron_check_due(self):
        """Every 5 minutes: the plans due by days, and any a session missed."""
        self.sudo().search([])._check_due()

    @guarded(MANAGER, "write")
    def action_check_now(self):
        opened = self.sudo()._check_due()
        if not opened:
            return True
        return {
            "type": "ir.actions.act_window",
            "res_model": "maintenance.request",
            "view_mode": "list,form",
            "domain": [("id", "in", opened.ids)],
            "name": _("Opened Requests"),
        }
