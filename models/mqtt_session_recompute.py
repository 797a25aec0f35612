# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Recompute sessions: replay machines' power history with other thresholds.

``action_preview`` replays the stored history of each machine through the
engine's state machine with the wizard's parameters and shows, per machine,
before and after (sessions, working and standby hours, energy) and every
session that appears, vanishes or changes.  ``action_apply`` does it again
inside one transaction with the machines locked and writes the result:
sessions that stay the same are kept (their ids too), changed ones are
rewritten in place, new ones created, vanished ones deleted; manual sessions
and the running session are left as they are (services/engine/recompute.py
says exactly what is left alone).  Each machine gets an audit row.

A long history is replayed in steps (``action_preview_step``), so the form
can show how far it got; ``action_preview`` runs them all.
"""

import json
from dataclasses import astuple

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from ..services.engine import history, recompute
from ..services.engine.timebase import from_utc
from ..services.engine.types import (
    DETECTOR_PARAMS,
    MANUAL,
    DetectorConfig,
    DetectorConfigError,
    SessionSummary,
)
from .mqtt_device import detector_error_text
from .rights import MANAGER, guarded

PARAMS = DETECTOR_PARAMS
DEFAULTS = DetectorConfig()
# Written by the wizard itself (as superuser), never by a client.
SERVER_FIELDS = frozenset(
    (
        "step_state",
        "progress",
        "state",
        "machine_ids",
        "line_ids",
        "changed_line_ids",
    )
)
STEP_RECORDS = 400_000  # records replayed per step (a few seconds)
LEAD_S = 3600.0  # the replay starts at least this long before the window
SESSION_FIELDS = [
    "start_ts",
    "end_ts",
    "standby_duration_s",
    "working_duration_s",
    "energy_wh",
    "end_reason",
    "origin",
]


class MqttSessionRecompute(models.TransientModel):
    _name = "mqtt.session.recompute"
    _description = "Recompute Sessions from the Power History"

    device_ids = fields.Many2many("mqtt.device", string="Machines", required=True)
    date_from = fields.Datetime(
        string="From", required=True, default=lambda self: self._default_from()
    )
    date_to = fields.Datetime(string="To", required=True, default=fields.Datetime.now)
    # Filled from the chosen machine (mqtt_session_recompute_preview.py).
    standby_threshold_w = fields.Float(
        string="Standby Threshold (W)", default=DEFAULTS.standby_threshold_w
    )
    working_threshold_w = fields.Float(
        string="Working Threshold (W)", default=DEFAULTS.working_threshold_w
    )
    start_debounce_s = fields.Float(
        string="Start Delay (s)", default=DEFAULTS.start_debounce_s
    )
    stop_debounce_s = fields.Float(
        string="Stop Delay (s)", default=DEFAULTS.stop_debounce_s
    )
    message_timeout_s = fields.Float(
        string="Silence Timeout (s)", default=DEFAULTS.message_timeout_s
    )
    write_params = fields.Boolean(
        string="Use these settings from now on",
        help="Also write these settings to the machines, so the runner detects "
        "new sessions with them.",
    )
    state = fields.Selection(
        [
            ("draft", "Settings"),
            ("preview", "Preview"),
            ("confirm", "Confirm"),
            ("done", "Applied"),
        ],
        default="draft",
        required=True,
    )
    progress = fields.Float(readonly=True)
    step_state = fields.Json(readonly=True)
    machine_ids = fields.One2many(
        "mqtt.session.recompute.machine", "wizard_id", string="Per Machine"
    )
    line_ids = fields.One2many(
        "mqtt.session.recompute.line", "wizard_id", string="Sessions"
    )

    def _compute_display_name(self):
        for wizard in self:
            wizard.display_name = _("Recompute Sessions")

    @api.model_create_multi
    @guarded(MANAGER, "create")
    def create(self, vals_list):
        if not self.env.su:
            # A new wizard's form sends the defaults of what it shows (its
            # state among them): the wizard's own fields start as the
            # wizard says, whatever a client sends.
            vals_list = [
                {k: v for k, v in vals.items() if k not in SERVER_FIELDS}
                for vals in vals_list
            ]
        wizards = super().create(vals_list)
        wizards.device_ids.check_access("read")  # the caller's machines only
        return wizards

    @guarded(MANAGER, "write")
    def write(self, vals):
        self._server_only(vals)
        res = super().write(vals)
        if "device_ids" in vals:
            self.device_ids.check_access("read")
        return res

    def _server_only(self, vals):
        """The replay's plan (which machines, which chunks) and its results
        are the wizard's own: read and written as superuser, never taken
        from a client."""
        forged = SERVER_FIELDS & set(vals)
        if forged and not self.env.su:
            raise AccessError(
                _("These fields are the wizard's own: %s", ", ".join(sorted(forged)))
            )

    @api.model
    def _default_from(self):
        return fields.Datetime.subtract(fields.Datetime.now(), days=30)

    @api.model
    @guarded(MANAGER, None)
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        ids = self.env.context.get("default_device_ids") or []
        if not ids and self.env.context.get("active_model") == "mqtt.device":
            ids = self.env.context.get("active_ids") or []
        ids = [i if isinstance(i, int) else i[1] for i in ids if i]
        if ids:
            values["device_ids"] = [(6, 0, ids)]
            first = self.env["mqtt.device"].browse(ids[0])
            for name in PARAMS:
                values[name] = first[name]
        return values

    # -- parameters ----------------------------------------------------------
    def _config(self):
        self.ensure_one()
        try:
            return DetectorConfig(**{name: self[name] for name in PARAMS})
        except DetectorConfigError as exc:
            raise UserError(
                _(
                    "These settings cannot be used: %s",
                    detector_error_text(self, exc),
                )
            ) from exc

    def _window(self):
        if self.date_to <= self.date_from:
            raise UserError(_("'To' must be after 'From'."))
        return from_utc(self.date_from), from_utc(self.date_to)

    # -- the replay, in steps --------------------------------------------------
    def _start(self):
        """Plan the replay of every machine: from which chunk, how much."""
        self.ensure_one()
        self.env["mqtt.session.recompute"].check_access("write")
        config = self._config()
        a, _b = self._window()
        machines = []
        total = 0
        for device in self.device_ids:
            device.check_access("read")
            device = device.sudo()
            starts = device._history_starts(self._replay_from(device, a), a)
            index = recompute.pick_start(starts, a - LEAD_S, config)
            self.env.cr.execute(
                "SELECT id, count FROM mqtt_power_chunk WHERE device_id = %s "
                "AND first_ts >= %s ORDER BY first_ts, id",
                (device.id, starts[index][0] if starts else 0.0),
            )
            rows = self.env.cr.fetchall()
            total += sum(count for _id, count in rows) + 1
            machines.append(
                {"device": device.id, "chunks": [r[0] for r in rows], "done": 0}
            )
        self.sudo().write(
            {
                "step_state": {"machines": machines, "total": total, "done": 0},
                "progress": 0.0,
                "machine_ids": [(5, 0, 0)],
                "line_ids": [(5, 0, 0)],
            }
        )

    @api.model
    def _replay_from(self, device, a):
        """Where to look for a chunk to start from: a lead before the window,
        and before any stored session that crosses its start."""
        self.env.cr.execute(
            "SELECT min(start_ts) FROM mqtt_session WHERE device_id = %s "
            "AND start_ts < %s AND (end_ts IS NULL OR end_ts > %s)",
            (device.id, a, a),
        )
        crossing = self.env.cr.fetchone()[0]
        start = min(a, crossing) if crossing else a
        return start - 7 * 86400.0  # room for a chunk at rest before it

    @guarded(MANAGER, "write")
    def action_preview_step(self):
        """Replay about ``STEP_RECORDS`` records; returns whether all is done."""
        self.ensure_one()
        if not self.step_state:
            self._start()
        state = dict(self.step_state)
        machines = state["machines"]
        pending = [m for m in machines if m.get("result") is None]
        if pending:
            budget = STEP_RECORDS
            machine = pending[0]
            budget = self._replay_step(machine, budget)
            state["done"] = min(state["total"], state["done"] + (STEP_RECORDS - budget))
        done = all(m.get("result") is not None for m in machines)
        values = {
            "step_state": state,
            "progress": 100.0
            if done
            else 100.0 * state["done"] / max(state["total"], 1),
        }
        if done:
            values["state"] = "preview"
        self.sudo().write(values)
        if done:
            self._write_preview()
        return {"done": done, "progress": self.progress}

    def _replay_step(self, item, budget):
        """Go on with one machine's replay for up to ``budget`` records."""
        if item["device"] not in self.device_ids.ids:
            raise AccessError(_("The replay names a machine this wizard has not."))
        device = self.env["mqtt.device"].browse(item["device"]).sudo()
        replay = history.Replay.resume(self._config(), item.get("replay"))
        chunk_ids = item["chunks"]
        while item["done"] < len(chunk_ids) and budget > 0:
            self.env.cr.execute(
                "SELECT data, count FROM mqtt_power_chunk "
                "WHERE id = %s AND device_id = %s",
                (chunk_ids[item["done"]], device.id),
            )
            data, count = self.env.cr.fetchone()
            replay.run(history.decode_chunk(bytes(data)))
            item["done"] += 1
            budget -= count
        item.setdefault("closed", []).extend(
            [*astuple(r.summary), r.manual] for r in replay.closed
        )
        if item["done"] >= len(chunk_ids):
            tail = device._history_tail()
            if tail:
                replay.closed = []
                replay.run(history.decode(tail))
                item["closed"].extend(
                    [*astuple(r.summary), r.manual] for r in replay.closed
                )
            item["result"] = self._plan(device, replay.machine, item["closed"])
        item["replay"] = replay.state()
        return budget

    def _plan(self, device, machine, closed):
        """Compare the replay of ``device`` with what is stored; JSON-ready."""
        a, b = self._window()
        replayed = [history.Replayed(SessionSummary(*s[:6]), s[6]) for s in closed]
        open_session = machine.session if machine is not None else None
        stored = self._stored(
            device, min([a] + [r.summary.start_time for r in replayed])
        )
        running = (
            self.env["mqtt.session"]
            .sudo()
            .search([("device_id", "=", device.id), ("state", "=", "running")], limit=1)
        )
        plan = recompute.plan(
            replayed,
            open_session,
            stored,
            (a, b),
            running.start_ts if running else None,
        )
        return {
            "window": list(plan.window),
            "changes": [
                [c.kind, c.stored_id, _summary(c.before), _summary(c.after)]
                for c in plan.changes
            ],
            "left_alone": [[_summary(s), why] for s, why in plan.left_alone],
        }

    @api.model
    def _sessions_left_alone(self, device):
        """Ids of ``device``'s closed sessions a recompute leaves as they are,
        like a person's sessions (and whatever a replayed session overlaps of
        them).  None here; an addon that hands sessions on (charged at a till)
        adds its own."""
        return set()

    @api.model
    def _stored(self, device, since):
        left_alone = self._sessions_left_alone(device)
        rows = (
            self.env["mqtt.session"]
            .sudo()
            .search_read(
                [
                    ("device_id", "=", device.id),
                    ("state", "=", "closed"),
                    ("end_ts", ">", since),
                ],
                SESSION_FIELDS,
                order="start_ts",
            )
        )
        return [
            recompute.StoredSession(
                r["id"],
                SessionSummary(
                    r["start_ts"],
                    r["end_ts"],
                    r["standby_duration_s"],
                    r["working_duration_s"],
                    r["energy_wh"],
                    r["end_reason"] or None,
                ),
                r["origin"] == "power"
                and r["end_reason"] != MANUAL
                and r["id"] not in left_alone,
            )
            for r in rows
        ]

    def _write_preview(self):
        """Turn each machine's plan into the lines the form shows."""
        Line = self.env["mqtt.session.recompute.line"]
        Machine = self.env["mqtt.session.recompute.machine"]
        for item in self.step_state["machines"]:
            result = item["result"]
            lines = []
            for kind, stored_id, before, after in result["changes"]:
                lines.append(
                    _line_values(self, item["device"], kind, stored_id, before, after)
                )
            for summary, why in result["left_alone"]:
                values = _line_values(
                    self, item["device"], "left_alone", None, None, summary
                )
                values["note"] = why
                lines.append(values)
            Line.create(lines)
            Machine.create(_machine_values(self, item["device"], result))

    @guarded(MANAGER, "write")
    def action_preview(self):
        """Replay every machine's history with these settings and show what
        would change."""
        self.ensure_one()
        self.sudo().step_state = False
        while not self.action_preview_step()["done"]:
            pass
        return self._reopen()

    def _reopen(self):
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
        }

    # -- apply ---------------------------------------------------------------------
    @guarded(MANAGER, "write")
    def action_apply(self):
        """Replace the automatic sessions of the window by the recomputed ones,
        in one transaction (the machines locked meanwhile)."""
        self.ensure_one()
        devices = self.device_ids.sudo()
        self.env.cr.execute(
            "SELECT id FROM mqtt_device WHERE id IN %s ORDER BY id FOR UPDATE",
            (tuple(devices.ids),),
        )
        self.sudo().step_state = False
        while not self.action_preview_step()["done"]:
            pass  # replayed again under the lock: what is applied is current
        Session = self.env["mqtt.session"].sudo()
        Log = self.env["mqtt.session.recompute.log"].sudo()
        new_params = {name: self[name] for name in PARAMS}
        for item in self.step_state["machines"]:
            device = devices.browse(item["device"])
            counts = dict.fromkeys(("same", "change", "appear", "vanish"), 0)
            changes = []
            for kind, stored_id, _before, after in item["result"]["changes"]:
                counts[kind] += 1
                if kind != "same":
                    summary = SessionSummary(*after) if after else None
                    changes.append((kind, Session.browse(stored_id), summary))
            # Through the session lifecycle: the hook hears what changed.
            Session._apply_recompute(device.id, changes)
            old_params = {name: device[name] for name in PARAMS}
            a, b = item["result"]["window"]
            Log.create(
                {
                    "device_id": device.id,
                    "user_id": self.env.uid,
                    "window_from": a,
                    "window_to": b,
                    "old_params": old_params,
                    "new_params": new_params,
                    "params_written": self.write_params,
                    "kept": counts["same"],
                    "changed": counts["change"],
                    "created": counts["appear"],
                    "removed": counts["vanish"],
                    "left_alone": len(item["result"]["left_alone"]),
                }
            )
            if self.write_params and old_params != new_params:
                device.write(new_params)
        self.sudo().state = "done"
        return self._reopen()


def _summary(summary):
    return None if summary is None else list(astuple(summary))


def _line_values(wizard, device_id, kind, stored_id, before, after):
    values = {
        "wizard_id": wizard.id,
        "device_id": device_id,
        "kind": kind,
        "session_id": stored_id,
    }
    for prefix, summary in (("before", before), ("after", after)):
        if summary:
            s = SessionSummary(*summary)
            values.update(
                {
                    f"{prefix}_start_ts": s.start_time,
                    f"{prefix}_end_ts": s.end_time,
                    f"{prefix}_working_s": s.working_duration_s,
                    f"{prefix}_standby_s": s.standby_duration_s,
                    f"{prefix}_energy_wh": s.energy_wh,
                    f"{prefix}_end_reason": s.end_reason,
                }
            )
    return values


def _machine_values(wizard, device_id, result):
    totals = {"before": [0, 0.0, 0.0, 0.0], "after": [0, 0.0, 0.0, 0.0]}
    counts = dict.fromkeys(("same", "change", "appear", "vanish"), 0)
    for kind, _stored_id, before, after in result["changes"]:
        counts[kind] += 1
        for side, summary in (("before", before), ("after", after)):
            if summary:
                s = SessionSummary(*summary)
                row = totals[side]
                row[0] += 1
                row[1] += s.working_duration_s / 3600.0
                row[2] += s.standby_duration_s / 3600.0
                row[3] += s.energy_wh / 1000.0
    a, b = result["window"]
    return {
        "wizard_id": wizard.id,
        "device_id": device_id,
        "window_from": a,
        "window_to": b,
        "sessions_before": totals["before"][0],
        "sessions_after": totals["after"][0],
        "working_h_before": totals["before"][1],
        "working_h_after": totals["after"][1],
        "standby_h_before": totals["before"][2],
        "standby_h_after": totals["after"][2],
        "energy_kwh_before": totals["before"][3],
        "energy_kwh_after": totals["after"][3],
        "kept": counts["same"],
        "changed": counts["change"],
        "appearing": counts["appear"],
        "vanishing": counts["vanish"],
        "left_alone": len(result["left_alone"]),
        "detail": json.dumps(result["left_alone"])[:10000],
    }
