# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A maintenance request a plan opened; done, it re-bases the plan.

``mqtt_plan_open`` is stored so the database can promise what the plans
rely on: at most one open request per plan (a partial unique index), also
when two workers or two nodes find the plan due at the same moment."""

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from odoo.addons.open_workshop_mqtt.models.rights import guarded


class MaintenanceRequest(models.Model):
    _inherit = "maintenance.request"

    mqtt_plan_id = fields.Many2one(
        "mqtt.maintenance.plan",
        string="Maintenance Plan",
        index=True,
        readonly=True,
        copy=False,
        ondelete="set null",
    )
    mqtt_plan_open = fields.Boolean(
        string="Open Request of its Plan",
        compute="_compute_mqtt_plan_open",
        store=True,
        copy=False,
    )

    @api.depends("mqtt_plan_id", "stage_id.done", "archive")
    def _compute_mqtt_plan_open(self):
        for request in self:
            request.mqtt_plan_open = bool(
                request.mqtt_plan_id
                and not request.stage_id.done
                and not request.archive
            )

    def init(self):
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS maintenance_request_one_open_per_plan "
            "ON maintenance_request (mqtt_plan_id) WHERE mqtt_plan_open"
        )

    @api.model_create_multi
    @guarded(None, "create")
    def create(self, vals_list):
        if not self.env.su and any(v.get("mqtt_plan_id") for v in vals_list):
            raise AccessError(_("Only a due maintenance plan opens its requests."))
        return super().create(vals_list)

    @guarded(None, "write")
    def write(self, vals):
        if not self.env.su and "mqtt_plan_id" in vals:
            raise AccessError(_("Only a due maintenance plan opens its requests."))
        done_before = {r.id for r in self if r.stage_id.done}
        res = super().write(vals)
        if "stage_id" in vals:
            reopened = self.filtered(
                lambda r: r.mqtt_plan_id and r.id in done_before and not r.stage_id.done
            )
            if reopened and not self.env.su:
                raise UserError(
                    _(
                        "A plan's done request stays done (the plan counts from "
                        "it): open a new request instead."
                    )
                )
            finished = self.filtered(
                lambda r: r.mqtt_plan_id and r.stage_id.done and r.id not in done_before
            )
            for request in finished:
                request.mqtt_plan_id.sudo()._rebase(request)
        return res
