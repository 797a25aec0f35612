# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A broker connection: configuration the runner reads, runtime state it writes.

The database is the source of truth: Start/Stop only record the wish
(``run_requested``) and NOTIFY the runner, which reconciles within seconds.
Runtime fields (``state``, ``last_error``, ``owner_node``, ``heartbeat``) are
written by the runner that owns the connection (see services/runner.py).
"""

import base64
import logging
import uuid
from datetime import timedelta

import odoo
from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..services.engine.fleet import MAX_SESSION_EXPIRY_S
from ..services.mqtt.connect import ClientSettings, probe_broker
from ..services.mqtt.texts import Text
from .hot_rows import keep_updates_on_page
from .rights import MANAGER, guarded
from .runner_signal import create_revision_sequence, notify_runner

_logger = logging.getLogger(__name__)

# A runner heartbeat older than this means no runner is consuming the connection.
HEARTBEAT_STALE_S = 30

RUNNER_FIELDS = {
    "host",
    "port",
    "use_tls",
    "tls_verify",
    "tls_ca_cert",
    "tls_client_cert",
    "tls_client_key",
    "username",
    "password",
    "client_id",
    "keepalive",
    "qos",
    "session_expiry_s",
    "reconnect_min_s",
    "reconnect_max_s",
    "reconnect_factor",
    "run_requested",
    "discovery_enabled",
    "active",
    "restart_count",
}


def _default_client_id():
    return f"owm-{uuid.uuid4().hex[:12]}"


class MqttConnection(models.Model):
    _name = "mqtt.connection"
    _description = "MQTT Broker Connection"
    _order = "name, id"

    name = fields.Char(required=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", default=lambda self: self.env.company, index=True
    )
    # Where the broker is and who the runner is there: managers only.
    host = fields.Char(
        required=True, default="127.0.0.1", groups="open_workshop_mqtt.group_manager"
    )
    port = fields.Integer(
        required=True, default=1883, groups="open_workshop_mqtt.group_manager"
    )
    use_tls = fields.Boolean(string="Use TLS")
    tls_verify = fields.Boolean(
        string="Verify Broker Certificate",
        default=True,
        help="Check the broker's certificate against the CA. Turn off only for a "
        "test broker you trust: without verification anyone on the network path "
        "can read and fake meter data.",
    )
    tls_ca_cert = fields.Binary(
        string="CA Certificate (PEM)",
        attachment=True,
        groups="open_workshop_mqtt.group_manager",
        help="The certificate authority that signed the broker's certificate. "
        "Empty: the system's trusted CAs are used.",
    )
    tls_client_cert = fields.Binary(
        string="Client Certificate (PEM)",
        attachment=True,
        groups="open_workshop_mqtt.group_manager",
    )
    tls_client_key = fields.Binary(
        string="Client Key (PEM)",
        attachment=True,
        groups="open_workshop_mqtt.group_manager",
    )
    username = fields.Char(groups="open_workshop_mqtt.group_manager")
    password = fields.Char(
        groups="open_workshop_mqtt.group_manager",
        copy=False,
        help="Stored for the runner; visible and readable only for managers.",
    )
    client_id = fields.Char(
        string="Client ID",
        required=True,
        copy=False,
        groups="open_workshop_mqtt.group_manager",
        default=lambda self: _default_client_id(),
        help="MQTT client id of this connection. It belongs to the connection, not "
        "to a server: with a persistent session the broker keeps QoS 1 readings "
        "for it while the runner reconnects or another node takes over.",
    )
    keepalive = fields.Integer(default=60, help="MQTT keepalive in seconds.")
    qos = fields.Selection(
        [("0", "0 - at most once"), ("1", "1 - at least once")],
        string="QoS",
        default="1",
        required=True,
        help="QoS 1 with a persistent session loses no reading across broker "
        "restarts and takeovers; QoS 0 is lighter but may lose readings.",
    )
    session_expiry_s = fields.Integer(
        string="Session Expiry (s)",
        default=86400,
        help="How long the broker keeps readings for this connection while no "
        "runner is connected, at most 30 days (2592000 s). 0 = clean session "
        "(readings in a gap are lost).",
    )
    reconnect_min_s = fields.Float(string="Reconnect Delay (s)", default=5.0)
    reconnect_max_s = fields.Float(string="Max Reconnect Delay (s)", default=300.0)
    reconnect_factor = fields.Float(string="Reconnect Backoff Factor", default=1.5)
    auto_start = fields.Boolean(
        default=True,
        help="Start this connection whenever an Odoo server with the runner starts. "
        "When off, it runs only after someone presses Start, and stays stopped "
        "after a restart once stopped.",
    )
    discovery_enabled = fields.Boolean(
        string="Discover Shelly Devices",
        help="Create an inactive 'discovered' device for every Shelly that reports "
        "on this broker but matches no device yet. A manager confirms it.",
    )
    run_requested = fields.Boolean(
        string="Running Requested",
        default=False,
        copy=False,
        readonly=True,
        help="Set by Start, cleared by Stop. The runner follows this wish.",
    )
    restart_count = fields.Integer(
        readonly=True,
        copy=False,
        help="Raised by Restart: the runner drops its link and connects anew.",
    )
    device_ids = fields.One2many("mqtt.device", "connection_id", string="Devices")
    device_count = fields.Integer(compute="_compute_device_count")

    # Runtime state, written by the runner.
    state = fields.Selection(
        [
            ("stopped", "Stopped"),
            ("connecting", "Connecting"),
            ("connected", "Connected"),
            ("error", "Error"),
        ],
        default="stopped",
        readonly=True,
        copy=False,
    )
    last_error = fields.Char(string="Last Error (as logged)", readonly=True, copy=False)
    last_error_data = fields.Json(readonly=True, copy=False)
    last_error_display = fields.Char(
        string="Last Error", compute="_compute_last_error_display"
    )
    last_connected = fields.Datetime(readonly=True, copy=False)
    state_since = fields.Datetime(
        string="In This State Since", readonly=True, copy=False
    )
    queue_depth = fields.Integer(
        readonly=True,
        copy=False,
        help="Messages received and not yet written, in the runner of this "
        "database (all its brokers), at its last heartbeat.",
    )
    owner_node = fields.Char(
        readonly=True,
        copy=False,
        groups="open_workshop_mqtt.group_manager",
        help="The server process consuming this broker.",
    )
    heartbeat = fields.Datetime(string="Runner Heartbeat", readonly=True, copy=False)
    stat_received = fields.Integer(string="Messages Received", readonly=True, default=0)
    stat_readings = fields.Integer(string="Readings", readonly=True, default=0)
    stat_ignored = fields.Integer(string="Not Readings", readonly=True, default=0)
    stat_rejected = fields.Integer(string="Rejected Payloads", readonly=True, default=0)
    stat_rate_limited = fields.Integer(string="Rate-Limited", readonly=True, default=0)
    stat_unmatched = fields.Integer(string="Unmatched Topics", readonly=True, default=0)
    stat_duplicates = fields.Integer(
        string="Redelivered Copies",
        readonly=True,
        default=0,
        help="Messages the broker delivered again (after a reconnect or "
        "overlapping subscriptions): recognised and skipped.",
    )
    stat_stale = fields.Integer(
        string="Stale Frames",
        readonly=True,
        default=0,
        help="Frames older than what the meter already reported: changed nothing.",
    )
    stat_errors = fields.Integer(
        string="Processing Errors",
        readonly=True,
        default=0,
        help="Frames the runner met an unexpected error with (a bug to report); "
        "each is in the raw log with status 'Processing Error'.",
    )
    stat_clock_refused = fields.Integer(
        string="Device Times Not Believed",
        readonly=True,
        default=0,
        help="Frames dated more than 5 minutes ahead of the runner's clock (or "
        "further behind than the broker keeps readings): their meter's clock is "
        "off, so they were read at their receive time.",
    )
    committed_mids = fields.Char(
        readonly=True,
        copy=False,
        groups="base.group_system",
        help="Technical: MQTT packet ids committed in the last batch but maybe not "
        "yet acknowledged; a redelivery of one of them is skipped.",
    )
    runner_token = fields.Char(
        readonly=True,
        copy=False,
        groups="base.group_system",
        help="Technical: fencing token of the runner that owns this connection.",
    )
    runner_status = fields.Char(compute="_compute_runner_status")
    runner_alive = fields.Boolean(compute="_compute_runner_status")

    _sql_constraints = [
        ("client_id_unique", "unique(client_id)", "The MQTT client id must be unique."),
    ]

    def init(self):
        create_revision_sequence(self.env.cr)
        keep_updates_on_page(self.env.cr, self._table)

    @api.depends("device_ids")
    def _compute_device_count(self):
        counts = dict(
            self.env["mqtt.device"]
            .with_context(active_test=False)
            ._read_group(
                [("connection_id", "in", self.ids)], ["connection_id"], ["__count"]
            )
        )
        for rec in self:
            rec.device_count = counts.get(rec, 0)

    @api.depends("last_error", "last_error_data")
    @api.depends_context("lang")
    def _compute_last_error_display(self):
        # The runner writes English; show the reader's language when it can.
        for rec in self:
            text = rec.last_error
            if rec.last_error_data:
                try:
                    text = Text.from_json(rec.last_error_data).translate(self.env._)
                except (KeyError, TypeError, ValueError):
                    text = rec.last_error
            rec.last_error_display = text

    @api.depends("heartbeat", "state", "run_requested", "owner_node")
    @api.depends_context("uid")
    def _compute_runner_status(self):
        now = fields.Datetime.now()
        loaded_here = _runner_loaded_in_this_server()
        manager = self.env.user.has_group("open_workshop_mqtt.group_manager")
        for rec in self:
            alive = bool(
                rec.heartbeat
                and now - rec.heartbeat <= timedelta(seconds=HEARTBEAT_STALE_S)
            )
            rec.runner_alive = alive
            if alive:
                age = int((now - rec.heartbeat).total_seconds())
                if manager:
                    rec.runner_status = _(
                        "Read by the runner on %(server)s; last heartbeat %(age)s s "
                        "ago.",
                        server=_server_in_words(self.env, rec.sudo().owner_node),
                        age=age,
                    )
                else:
                    rec.runner_status = _(
                        "Read by the runner; last heartbeat %(age)s s ago.", age=age
                    )
            elif rec.run_requested and not loaded_here:
                rec.runner_status = _(
                    "No MQTT runner is loaded: add open_workshop_mqtt to "
                    "server_wide_modules (e.g. --load=base,web,open_workshop_mqtt) "
                    "and restart the Odoo server."
                )
            elif rec.run_requested:
                rec.runner_status = _(
                    "Start requested; waiting for the runner (it picks up changes "
                    "within 2 seconds)."
                )
            else:
                rec.runner_status = _("Stopped.")

    @api.constrains("port", "keepalive", "session_expiry_s")
    def _check_numbers(self):
        for rec in self:
            if not 1 <= rec.port <= 65535:
                raise ValidationError(
                    _("The broker port must be between 1 and 65535, not %s.", rec.port)
                )
            if not 5 <= rec.keepalive <= 65535:
                raise ValidationError(
                    _("Keepalive must be between 5 and 65535 seconds.")
                )
            if not 0 <= rec.session_expiry_s <= MAX_SESSION_EXPIRY_S:
                raise ValidationError(
                    _(
                        "Session expiry must be between 0 and %(max)s seconds "
                        "(30 days): readings older than that are not trusted "
                        "to carry a correct meter time.",
                        max=MAX_SESSION_EXPIRY_S,
                    )
                )

    @api.constrains("reconnect_min_s", "reconnect_max_s", "reconnect_factor")
    def _check_backoff(self):
        for rec in self:
            if rec.reconnect_min_s <= 0 or rec.reconnect_max_s < rec.reconnect_min_s:
                raise ValidationError(
                    _(
                        "The reconnect delay must be positive and not larger than "
                        "the maximum reconnect delay."
                    )
                )
            if rec.reconnect_factor < 1:
                raise ValidationError(_("The backoff factor must be at least 1."))

    @api.constrains("host")
    def _check_host(self):
        for rec in self:
            host = (rec.host or "").strip()
            if not host or any(c.isspace() for c in host) or "/" in host:
                raise ValidationError(
                    _("'%s' is not a broker host name or address.", rec.host)
                )

    @api.model_create_multi
    @guarded(MANAGER, "create")
    def create(self, vals_list):
        records = super().create(vals_list)
        notify_runner(self.env.cr)
        return records

    @guarded(MANAGER, "write")
    def write(self, vals):
        res = super().write(vals)
        if RUNNER_FIELDS & set(vals):
            notify_runner(self.env.cr)
        return res

    @guarded(MANAGER, "unlink")
    def unlink(self):
        res = super().unlink()
        notify_runner(self.env.cr)
        return res

    # -- the service: for code and for staff's buttons ---------------------------
    @guarded(MANAGER, "write")
    def start(self):
        """Ask the runner to consume these brokers (it follows within 2 s)."""
        self.write({"run_requested": True})
        return True

    @guarded(MANAGER, "write")
    def stop(self):
        """Ask the runner to let go of these brokers."""
        self.write({"run_requested": False})
        return True

    @guarded(MANAGER, "write")
    def restart(self):
        """Drop the runner's link to each broker and connect anew (a running
        one; a stopped one starts)."""
        for rec in self:
            rec.write({"run_requested": True, "restart_count": rec.restart_count + 1})
        return True

    @guarded(MANAGER)
    def status(self):
        """Each broker's runner state, as a plain dict per connection
        (``{id: {...}}``): state, a sentence for people, since when, the last
        error, which server runs it, the runner's queue depth."""
        out = {}
        for rec in self.sudo():
            out[rec.id] = {
                "name": rec.name,
                "state": rec.state,
                "running_requested": rec.run_requested,
                "runner_alive": rec.runner_alive,
                "sentence": rec.with_env(self.env).runner_status,
                "since": fields.Datetime.to_string(rec.state_since) or None,
                "last_error": rec.with_env(self.env).last_error_display or None,
                "node": rec.owner_node or None,
                "heartbeat": fields.Datetime.to_string(rec.heartbeat) or None,
                "queue_depth": rec.queue_depth if rec.runner_alive else None,
            }
        return out

    @guarded(MANAGER, "write")
    def action_start(self):
        return self.start()

    @guarded(MANAGER, "write")
    def action_stop(self):
        return self.stop()

    @guarded(MANAGER, "write")
    def action_restart(self):
        return self.restart()

    @guarded(MANAGER)
    def action_view_devices(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "open_workshop_mqtt.mqtt_device_action"
        )
        action["domain"] = [("connection_id", "=", self.id)]
        action["context"] = {"default_connection_id": self.id, "active_test": False}
        return action

    @guarded(MANAGER, "write")
    def action_test_connection(self):
        """Try the broker once and answer in plain words (no runner needed)."""
        self.ensure_one()
        # A manager's action (its rule): it reads the secrets as superuser.
        settings = ClientSettings(**self.sudo()._client_settings_values())
        ok, message = probe_broker(settings, timeout=5.0)
        if isinstance(message, Text):
            message = message.translate(self.env._)
        if not ok:
            # The message never contains the password (see probe_broker).
            raise UserError(_("Connection test failed: %s", message))
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Connection test"),
                "message": message,
                "type": "success",
                "sticky": False,
            },
        }

    def _client_settings_values(self):
        """Settings for services.mqtt_client; call on a sudo record (secrets)."""
        self.ensure_one()
        return {
            "host": self.host.strip(),
            "port": self.port,
            "client_id": self.client_id,
            "username": self.username or None,
            "password": self.password or None,
            "keepalive": self.keepalive,
            "qos": int(self.qos),
            "session_expiry_s": self.session_expiry_s,
            "use_tls": self.use_tls,
            "tls_verify": self.tls_verify,
            "tls_ca_pem": _b64_text(self.tls_ca_cert),
            "tls_cert_pem": _b64_text(self.tls_client_cert),
            "tls_key_pem": _b64_text(self.tls_client_key),
            "reconnect_min_s": self.reconnect_min_s,
            "reconnect_max_s": self.reconnect_max_s,
            "reconnect_factor": self.reconnect_factor,
        }


def _b64_text(value):
    if not value:
        return None
    return base64.b64decode(value).decode("utf-8", errors="replace")


def _runner_loaded_in_this_server():
    return "open_workshop_mqtt" in odoo.conf.server_wide_modules


def _server_in_words(env, node):
    """``"vm:7269"`` (a runner's default node name, host:pid) -> "server vm
    (process 7269)"; a node name set by the operator stays as it is."""
    host, sep, pid = (node or "").rpartition(":")
    if sep and host and pid.isdigit():
        return env._("server %(host)s (process %(pid)s)", host=host, pid=pid)
    return env._("server %s", node or "?")
