# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A machine behind a power meter: where its data comes from, how it is read.

Live fields (``current_*``, ``online``, ``last_message_time``) and the
technical snapshots are written by the runner once per flush; everything else
is configuration that the runner picks up within seconds (NOTIFY on write).
"""

import math

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..parsers import FILTER, METER_KINDS, PREFIX, channels, make_parser, meter_kind
from ..parsers.topic_filter import validate_filter, validate_topic
from ..services.engine.timebase import to_utc
from ..services.engine.types import (
    DETECTOR_PARAMS,
    DetectorConfig,
    DetectorConfigError,
    State,
)
from .hot_rows import keep_updates_on_page
from .rights import MANAGER, USER, guarded
from .runner_signal import notify_runner

DEFAULTS = DetectorConfig()

# The device fields that hold a kind's options (generic JSON: key paths).
OPTION_FIELDS = sorted(
    {name for kind in METER_KINDS.values() for _opt, name in kind.option_fields}
)
# Fields whose change the runner must apply (subscriptions, parser, detector).
RUNNER_FIELDS = {
    "active",
    "connection_id",
    "parser_type",
    "topic_prefix",
    "topic_pattern",
    "component",
    *OPTION_FIELDS,
    *DETECTOR_PARAMS,
    "poll_interval_s",
    "log_raw",
    "max_msg_rate",
}

MACHINE_ICONS = {
    "laser": "fa-bolt",
    "saw": "fa-scissors",
    "printer": "fa-cube",
    "cnc": "fa-cogs",
    "compressor": "fa-tachometer",
}

_STATE_LABELS = {
    State.IDLE: "Off",
    State.STARTING: "Starting",
    State.STANDBY: "Standby",
    State.WORKING: "Working",
    State.STOPPING: "Stopping",
}
STATES = [(state.value, _STATE_LABELS[state]) for state in State]
# The live board's bus notification (static/src/js/live_board.js listens).
DEVICE_NOTIFICATION = "open_workshop_mqtt/devices"
MAX_NOTIFIED_IDS = 500

# The session fields a machine's usage totals sum, and those totals (the
# count first), kept by models/mqtt_session_usage.py.
USAGE_FIELDS = ("working_duration_s", "standby_duration_s", "energy_wh")
USAGE_TOTALS = (
    "session_count",
    "total_working_hours",
    "total_standby_hours",
    "total_energy_kwh",
)
USAGE_SCALES = (1.0, 1 / 3600.0, 1 / 3600.0, 1 / 1000.0)  # count, s -> h, Wh -> kWh


class MqttDevice(models.Model):
    _name = "mqtt.device"
    _description = "Workshop Machine (MQTT Power Meter)"
    _order = "sequence, name, id"
    _check_company_auto = True

    name = fields.Char(string="Machine", required=True)
    active = fields.Boolean(default=True)
    sequence = fields.Integer(default=10)
    color = fields.Integer()
    company_id = fields.Many2one(
        "res.company", default=lambda self: self.env.company, index=True
    )
    location = fields.Char(help="Where the machine stands, e.g. 'Wood shop'.")
    machine_type = fields.Selection(
        [
            ("laser", "Laser Cutter"),
            ("saw", "Saw"),
            ("printer", "3D Printer"),
            ("cnc", "CNC Mill / Router"),
            ("compressor", "Compressor"),
            ("other", "Other"),
        ],
        default="other",
        required=True,
    )
    machine_icon = fields.Char(compute="_compute_machine_icon")
    connection_id = fields.Many2one(
        "mqtt.connection",
        string="Broker",
        required=True,
        ondelete="restrict",
        index=True,
        check_company=True,
    )
    parser_type = fields.Selection(
        selection="_selection_parser_type",
        string="Meter Type",
        default="shelly_gen2",
        required=True,
    )
    uses_prefix = fields.Boolean(compute="_compute_kind")
    uses_component = fields.Boolean(compute="_compute_kind")
    uses_options = fields.Boolean(compute="_compute_kind")
    pollable = fields.Boolean(compute="_compute_kind")
    topic_prefix = fields.Char(
        help="The meter's MQTT topic prefix, by default its device id such as "
        "'shellypmminig3-84fce638d818'. Shelly devices only.",
    )
    topic_pattern = fields.Char(
        string="Topic Filter",
        help="For generic meters: the MQTT topic filter to read, wildcards allowed "
        "('+' one level, '#' all remaining levels), e.g. 'workshop/+/power'.",
    )
    component = fields.Char(
        string="Metering Channel",
        default="pm1:0",
        help="Which channel of the meter to read. Shelly Gen2/Gen3/Gen4: 'pm1:0' "
        "for a PM Mini; 'switch:0' for a 1PM, 2PM or Plug (switch:1 for a 2PM's "
        "second relay); 'em:0' for a three-phase Pro 3EM or 3EM-63 (the sum of "
        "its phases); 'em1:0' for a Pro EM, EM Gen3/Gen4, EM Mini or a 3EM in "
        "its monophase profile. Shelly Gen1: 'relay:0' for a 1PM or Plug S, "
        "'roller:0' for a 2.5 in roller mode, 'emeter:0' for one phase of an EM "
        "or 3EM. A machine on several channels of one device is metered by "
        "their sum: 'emeter:0+emeter:1+emeter:2' for all three phases of a "
        "Gen1 3EM, 'em1:0+em1:1' for both channels of a Pro EM, "
        "'switch:0+switch:1' for both relays of a 2PM.",
    )
    json_power_path = fields.Char(
        string="Power Key Path",
        default="power",
        help="Generic meters: dotted path to the power value in watts, "
        "e.g. 'ENERGY.Power'. A plain number payload is read as is.",
    )
    json_energy_path = fields.Char(
        string="Energy Key Path", help="Generic meters: path to a counter in Wh."
    )
    shelly_id = fields.Char(
        string="Shelly Device ID",
        readonly=True,
        help="Learned from the meter's frames.",
    )
    discovery_state = fields.Selection(
        [("confirmed", "Confirmed"), ("discovered", "Discovered")],
        default="confirmed",
        required=True,
        readonly=True,
    )

    standby_threshold_w = fields.Float(
        string="Standby Threshold (W)",
        default=DEFAULTS.standby_threshold_w,
        help="From this power on, the machine counts as switched on (standby). "
        "Below it, it counts as off. Set it above the meter's idle noise.",
    )
    working_threshold_w = fields.Float(
        string="Working Threshold (W)",
        default=DEFAULTS.working_threshold_w,
        help="From this power on, the machine counts as working under load. "
        "Between the two thresholds it is in standby.",
    )
    start_debounce_s = fields.Float(
        string="Start Delay (s)",
        default=DEFAULTS.start_debounce_s,
        help="The power must stay above the standby threshold this long before a "
        "session opens. Filters switch-on spikes. The session starts at the first "
        "reading above the threshold.",
    )
    stop_debounce_s = fields.Float(
        string="Stop Delay (s)",
        default=DEFAULTS.stop_debounce_s,
        help="The power must stay below the standby threshold this long before the "
        "session ends. Short dips (a saw between two cuts) stay in one session.",
    )
    message_timeout_s = fields.Float(
        string="Silence Timeout (s)",
        default=DEFAULTS.message_timeout_s,
        help="A running session ends (reason 'timeout') when the meter says nothing "
        "for this long. Keep it above the poll interval.",
    )
    poll_interval_s = fields.Float(
        string="Poll Interval (s)",
        default=5.0,
        help="Ask Shelly Gen2/Gen3 meters for their status this often, so a machine "
        "at a steady load (the meter only reports changes) is not timed out. "
        "0 turns polling off.",
    )
    log_raw = fields.Boolean(
        string="Log Raw Messages",
        help="Keep every message of this meter in the raw log (for debugging; "
        "cleaned up after the retention period).",
    )
    max_msg_rate = fields.Integer(
        string="Max Messages/s",
        default=50,
        help="Messages above this rate are dropped and counted, so one faulty "
        "meter cannot swamp the database.",
    )

    # Live state, written by the runner.
    current_state = fields.Selection(STATES, default="idle", readonly=True)
    state_since = fields.Datetime(
        string="In This State Since",
        readonly=True,
        help="When the runner wrote the machine's current state first.",
    )
    current_power_w = fields.Float(string="Power (W)", readonly=True, digits=(16, 1))
    current_energy_wh = fields.Float(
        string="Meter Counter (Wh)",
        readonly=True,
        help="The meter's own energy counter as it last reported it: all it "
        "has measured since it was made or reset, not only this machine's "
        "sessions.",
    )
    last_message_time = fields.Datetime(readonly=True)
    online = fields.Boolean(readonly=True)
    meter_error = fields.Char(readonly=True)
    rate_limited = fields.Boolean(
        readonly=True, help="The meter currently sends more than its message cap."
    )
    fault = fields.Char(
        string="Processing Error",
        readonly=True,
        help="The runner met an unexpected error with one of this meter's frames "
        "(a bug to report): the frame was logged as an error in the raw log and "
        "the other frames went on. Dismiss it once looked at.",
    )
    # The engine's state, rewritten by every flush: read only where needed
    # (prefetch=False), never decoded by a read of the machine's other fields.
    detector_snapshot = fields.Json(readonly=True, copy=False, prefetch=False)
    parser_snapshot = fields.Json(readonly=True, copy=False, prefetch=False)
    running_session_id = fields.Many2one("mqtt.session", readonly=True, copy=False)
    running_since = fields.Datetime(related="running_session_id.start_time")
    stop_due = fields.Datetime(
        compute="_compute_stop_due",
        help="While the machine is stopping: when its session ends unless the "
        "power comes back (its stop delay after the power dropped).",
    )

    session_ids = fields.One2many("mqtt.session", "device_id", string="Sessions")
    # Kept by the sessions' own writes (models/mqtt_session_usage.py), not
    # summed again at each: a machine's history can be long.
    session_count = fields.Integer(
        string="Number of Sessions", readonly=True, copy=False
    )
    total_working_hours = fields.Float(
        string="Working Hours",
        readonly=True,
        copy=False,
        help="Time under load in all of the machine's sessions.",
    )
    total_standby_hours = fields.Float(
        string="Standby Hours",
        readonly=True,
        copy=False,
        help="Time switched on but idle in all of the machine's sessions (the "
        "stop delay at a session's end included).",
    )
    total_energy_kwh = fields.Float(
        string="Energy in Sessions (kWh)",
        readonly=True,
        copy=False,
        help="What the machine used in all of its sessions (from the meter's "
        "counter where it reports one).",
    )

    _sql_constraints = [
        (
            "prefix_unique",
            "unique(connection_id, topic_prefix)",
            "Another meter on this broker already uses this topic prefix.",
        ),
        (
            "pattern_unique",
            "unique(connection_id, topic_pattern)",
            "Another meter on this broker already uses this topic filter.",
        ),
    ]

    def init(self):
        keep_updates_on_page(self.env.cr, self._table)

    def _recompute_usage(self):
        """Sum the machines' totals again from all of their sessions (the
        sessions' writes keep them by deltas; this is the exact figure)."""
        if not self:
            return
        self.env["mqtt.session"].flush_model(list(USAGE_FIELDS) + ["device_id"])
        self.flush_recordset(list(USAGE_TOTALS))
        self.env.cr.execute(
            "UPDATE mqtt_device AS d SET session_count = COALESCE(t.n, 0), "
            "total_working_hours = COALESCE(t.working, 0) * %s, "
            "total_standby_hours = COALESCE(t.standby, 0) * %s, "
            "total_energy_kwh = COALESCE(t.energy, 0) * %s "
            "FROM (SELECT m.id, count(s.id) AS n, "
            "sum(s.working_duration_s) AS working, "
            "sum(s.standby_duration_s) AS standby, sum(s.energy_wh) AS energy "
            "FROM mqtt_device m LEFT JOIN mqtt_session s ON s.device_id = m.id "
            "WHERE m.id IN %s GROUP BY m.id) AS t WHERE d.id = t.id",
            (*USAGE_SCALES[1:], tuple(self.ids)),
        )
        self.invalidate_recordset(list(USAGE_TOTALS), flush=False)

    @api.depends("current_state", "detector_snapshot", "stop_debounce_s")
    def _compute_stop_due(self):
        for rec in self:
            snap = rec.detector_snapshot or {}
            dropped = snap.get("t_stop")
            if rec.current_state != State.STOPPING.value or not dropped:
                rec.stop_due = False
                continue
            # Device time, on the wall clock with the meter's learned offset.
            offset = (rec.parser_snapshot or {}).get("clock_offset") or 0.0
            rec.stop_due = to_utc(dropped + rec.stop_debounce_s - offset)

    @api.depends("machine_type")
    def _compute_machine_icon(self):
        for rec in self:
            rec.machine_icon = MACHINE_ICONS.get(rec.machine_type, "fa-plug")

    @api.model
    def _selection_parser_type(self):
        """The kinds of meter: one row each in ``parsers.METER_KINDS``."""
        return [(key, self.env._(kind.label)) for key, kind in METER_KINDS.items()]

    @api.depends("parser_type")
    def _compute_kind(self):
        """What the form shows for the machine's kind of meter."""
        for rec in self:
            kind = METER_KINDS.get(rec.parser_type)
            rec.uses_prefix = kind is not None and kind.addressing == PREFIX
            rec.uses_component = bool(kind and kind.default_component)
            rec.uses_options = bool(kind and kind.option_fields)
            rec.pollable = bool(kind and kind.pollable)

    @api.onchange("parser_type")
    def _onchange_parser_type(self):
        kind = METER_KINDS.get(self.parser_type)
        if kind is not None and kind.default_component:
            self.component = kind.default_component

    @api.constrains(*DETECTOR_PARAMS, "poll_interval_s", "max_msg_rate")
    def _check_detector_settings(self):
        for rec in self:
            try:
                rec._detector_config()
            except DetectorConfigError as exc:
                raise ValidationError(
                    _(
                        "%(machine)s: %(problem)s",
                        machine=rec.name,
                        problem=detector_error_text(rec, exc),
                    )
                ) from exc
            if not math.isfinite(rec.poll_interval_s):
                raise ValidationError(
                    _("%s: the poll interval must be a number.", rec.name)
                )
            if rec.poll_interval_s < 0:
                raise ValidationError(
                    _(
                        "%s: the poll interval cannot be negative (0 turns it off).",
                        rec.name,
                    )
                )
            if rec.poll_interval_s and rec.poll_interval_s >= rec.message_timeout_s:
                raise ValidationError(
                    _(
                        "%(machine)s: poll every %(poll)s s but time out after "
                        "%(timeout)s s of silence: a machine at steady load would be "
                        "timed out between polls. Poll more often or raise the "
                        "timeout.",
                        machine=rec.name,
                        poll=rec.poll_interval_s,
                        timeout=rec.message_timeout_s,
                    )
                )
            if rec.max_msg_rate < 1:
                raise ValidationError(
                    _("%s: the message cap must be at least 1/s.", rec.name)
                )

    @api.constrains("parser_type", "topic_prefix", "topic_pattern", "component")
    def _check_topics(self):
        for rec in self:
            kind = meter_kind(rec.parser_type)
            if kind.addressing == FILTER:
                if not rec.topic_pattern:
                    raise ValidationError(
                        _("%s: a generic meter needs a topic filter.", rec.name)
                    )
                try:
                    validate_filter(rec.topic_pattern)
                except ValueError as exc:
                    raise ValidationError(
                        _(
                            "%(machine)s: invalid topic filter: %(error)s",
                            machine=rec.name,
                            error=exc,
                        )
                    ) from exc
                continue
            if not rec.topic_prefix:
                raise ValidationError(
                    _("%s: a Shelly meter needs a topic prefix.", rec.name)
                )
            prefix = rec.topic_prefix
            try:
                validate_topic(prefix)
            except ValueError as exc:
                raise ValidationError(
                    _(
                        "%(machine)s: invalid topic prefix: %(error)s",
                        machine=rec.name,
                        error=exc,
                    )
                ) from exc
            if prefix.startswith("/") or prefix.endswith("/") or prefix.startswith("$"):
                raise ValidationError(
                    _(
                        "%s: a topic prefix must not start or end with '/' or start "
                        "with '$'.",
                        rec.name,
                    )
                )
            try:  # the parser knows its channels: the one check that counts
                make_parser(rec.parser_type, prefix=prefix, component=rec.component)
            except ValueError as exc:
                raise ValidationError(
                    _(
                        "%(machine)s: '%(component)s' is not a metering channel of "
                        "this meter type (e.g. %(example)s).",
                        machine=rec.name,
                        component=rec.component or "",
                        example=kind.default_component or "",
                    )
                ) from exc

    @staticmethod
    def _normalize(vals):
        """Typed input without its stray spaces, so that one channel written
        twice reads the same ('em1:0 + em1:1' is 'em1:0+em1:1')."""
        for key in ("topic_prefix", "topic_pattern"):
            if vals.get(key):
                vals[key] = vals[key].strip()
        if vals.get("component"):
            vals["component"] = "+".join(channels(vals["component"]))

    @api.model_create_multi
    @guarded(MANAGER, "create")
    def create(self, vals_list):
        for vals in vals_list:
            self._normalize(vals)
        records = super().create(vals_list)
        notify_runner(self.env.cr)
        return records

    @guarded(MANAGER, "write")
    def write(self, vals):
        self._normalize(vals)
        if "active" in vals and not vals["active"]:
            # An archived machine leaves the runner, so nothing else would
            # close its running session: it ends here, as stopped by hand.
            running = (
                self.env["mqtt.session"]
                .sudo()
                .search([("device_id", "in", self.ids), ("state", "=", "running")])
            )
            for session in running:
                session._close_manual()
        res = super().write(vals)
        if RUNNER_FIELDS & set(vals):
            notify_runner(self.env.cr)
        return res

    @guarded(MANAGER, "unlink")
    def unlink(self):
        if self.env["mqtt.session"].search_count(
            [("device_id", "in", self.ids)], limit=1
        ):
            raise UserError(
                _(
                    "Machines with recorded sessions cannot be deleted; "
                    "archive them instead."
                )
            )
        res = super().unlink()
        notify_runner(self.env.cr)
        return res

    @guarded(USER)
    def action_view_sessions(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "open_workshop_mqtt.mqtt_session_action"
        )
        action["domain"] = [("device_id", "=", self.id)]
        action["context"] = {
            "default_device_id": self.id,
            "search_default_filter_running": 0,
        }
        return action

    @api.model
    def _notify_changed(self, ids):
        """The runner wrote these machines' live state: tell who shows it.

        Called once per committed batch with the ids of the machines whose
        state, power or session changed (in the runner's flush: keep it
        cheap).  The live board gets the ids and reads them itself; an addon
        that shows machines elsewhere (a till) extends this."""
        group = self.env.ref("open_workshop_mqtt.group_user", raise_if_not_found=False)
        if not group:
            return
        payload = {"ids": list(ids) if len(ids) <= MAX_NOTIFIED_IDS else []}
        self.env["bus.bus"]._sendone(group, DEVICE_NOTIFICATION, payload)

    def _detector_config(self):
        """The machine's detector parameters as the engine takes them
        (DetectorConfigError when they cannot be used)."""
        self.ensure_one()
        return DetectorConfig(**{name: self[name] for name in DETECTOR_PARAMS})

    @guarded(MANAGER, "write")
    def action_dismiss_fault(self):
        self.write({"fault": False})
        return True

    @guarded(MANAGER, "write")
    def action_confirm_discovered(self):
        self.write({"discovery_state": "confirmed", "active": True})
        return True

    @guarded(USER)
    def action_start_session(self):
        """Open a manual session now (end reason 'manual' when stopped by hand)."""
        # Sessions are written as superuser: the rule lets only those who see
        # the machine start one.
        sessions = self.env["mqtt.session"]
        for device in self:
            sessions |= sessions._open_manual(device)
        notify_runner(self.env.cr)
        return True

    @guarded(USER)
    def action_stop_session(self):
        """Close the running session now with end reason 'manual'."""
        for device in self:
            running = device.sudo().running_session_id or self.env[
                "mqtt.session"
            ].sudo().search(
                [("device_id", "=", device.id), ("state", "=", "running")], limit=1
            )
            if not running:
                raise UserError(_("%s has no running session to stop.", device.name))
            running._close_manual()
        notify_runner(self.env.cr)
        return True


def detector_error_text(records, exc):
    """``exc`` (a DetectorConfigError) in the reader's words: the settings by
    their labels on ``records``' model, in the reader's language."""
    env = records.env

    def label(name):
        return records._fields[name]._description_string(env)

    names = [label(name) for name in exc.names]
    values = [_number(value) for value in exc.values]
    if exc.rule == "not_above":
        return env._(
            "%(first)s cannot be above %(second)s (%(value)s > %(other)s).",
            first=names[0],
            value=values[0],
            second=names[1],
            other=values[1],
        )
    if exc.rule == "positive":
        return env._(
            "%(setting)s must be above 0 (it is %(value)s).",
            setting=names[0],
            value=values[0],
        )
    if exc.rule == "not_negative":
        return env._(
            "%(setting)s cannot be negative (it is %(value)s).",
            setting=names[0],
            value=values[0],
        )
    return env._("%(setting)s must be a number.", setting=names[0])


def _number(value):
    """A setting's value as people write it (12, 0.5)."""
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)
