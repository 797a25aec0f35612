/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// The till's machines and sessions: kept live over the bus (the server pushes
// what the runner writes), added to orders one line per session, each held
// on the server first so that no two orders charge it.

import { _t } from "@web/core/l10n/translation";
import { patch } from "@web/core/utils/patch";
import { AlertDialog } from "@web/core/confirmation_dialog/confirmation_dialog";
import { PosStore } from "@point_of_sale/app/store/pos_store";
import { deserializeDateTime } from "@web/core/l10n/dates";
import { formatDuration, formatStart } from "@open_workshop_mqtt/js/duration";
import { onRelease } from "./pos_order_line";

export const MACHINES = "OWM_MACHINES";
export const SESSIONS = "OWM_SESSIONS";

patch(PosStore.prototype, {
    async setup() {
        await super.setup(...arguments);
        this.data.connectWebSocket(MACHINES, (records) => this.owmOnMachines(records));
        this.data.connectWebSocket(SESSIONS, (payload) => this.owmOnSessions(payload));
        onRelease((sessions, uuid) => this.owmRelease(sessions, uuid));
    },

    /** The server pushed machines' live state. */
    owmOnMachines(records) {
        this.models.loadData({ "mqtt.device": records });
    },

    /** The server pushed sessions that closed, were held, charged or freed. */
    owmOnSessions({ upsert = [], remove_ids = [] }) {
        this.models.loadData({ "mqtt.session": upsert });
        for (const id of remove_ids) {
            const session = this.models["mqtt.session"].get(id);
            if (session && !this.owmLineOf(session)) {
                session.delete();
            }
        }
    },

    get owmMachines() {
        return this.models["mqtt.device"].getAll().sort((a, b) => a.name.localeCompare(b.name));
    },

    /** The machine's sessions a cashier may add: closed, not charged, not
     * held by another order. */
    owmSessionsOf(machine) {
        return this.models["mqtt.session"]
            .filter((s) => s.device_id?.id === machine.id && this.owmAddable(s))
            .sort((a, b) => (a.start_time < b.start_time ? 1 : -1));
    },

    owmSessionsOfPartner(partner) {
        return this.models["mqtt.session"]
            .filter((s) => s.raw.partner_id === partner.id && this.owmAddable(s))
            .sort((a, b) => (a.start_time < b.start_time ? 1 : -1));
    },

    owmAddable(session) {
        if (session.state !== "closed" || session.pos_charged) {
            return false;
        }
        const order = this.get_order();
        return !session.pos_reserved_uuid || session.pos_reserved_uuid === order?.uuid;
    },

    owmLineOf(session) {
        return this.models["pos.order.line"].find(
            (line) => line.mqtt_session_id?.id === session.id && !line.order_id?.finalized
        );
    },

    owmNote(session) {
        const start = deserializeDateTime(session.start_time);
        return _t("%(machine)s · %(start)s · %(duration)s (working %(working)s, standby %(standby)s) · %(kwh)s kWh", {
            machine: session.device_id?.name || "",
            start: formatStart(start),
            duration: formatDuration(session.working_duration_s + session.standby_duration_s),
            working: formatDuration(session.working_duration_s),
            standby: formatDuration(session.standby_duration_s),
            kwh: ((session.energy_wh || 0) / 1000).toFixed(2),
        });
    },

    /** Add a closed session to the current order: held on the server
     * first, one line at the session's price. */
    async owmAddSession(session) {
        if (this.data.network.offline) {
            this.dialog.add(AlertDialog, {
                title: _t("Offline"),
                body: _t("Machine time can be added again when the till is back online."),
            });
            return false;
        }
        const order = this.get_order() || this.add_new_order();
        if (this.owmLineOf(session)) {
            return false;
        }
        const result = await this.data.call("mqtt.session", "pos_reserve", [
            [session.id],
            order.uuid,
            this.session.id,
        ]);
        if (!result.reserved.includes(session.id)) {
            const reason = result.refused.find((r) => r.id === session.id)?.reason;
            this.dialog.add(AlertDialog, {
                title: _t("This session cannot be added"),
                body: reason || _t("It is held by another till."),
            });
            return false;
        }
        session.pos_reserved_uuid = order.uuid;
        const machine = session.device_id;
        const line = await this.addLineToCurrentOrder(
            {
                product_id: machine.pos_product_id,
                price_unit: session.price,
                qty: 1,
                customer_note: this.owmNote(session),
                mqtt_session_id: session,
            },
            { merge: false },
            false
        );
        if (!line) {
            this.owmRelease([session], order.uuid);
            return false;
        }
        if (!order.get_partner() && session.raw.partner_id) {
            const member = this.models["res.partner"].get(session.raw.partner_id);
            if (member) {
                order.set_partner(member);
            }
        }
        return line;
    },

    /** Stop a machine's running session now (a person's stop); its closed
     * session comes back to be added. */
    async owmStopMachine(machine) {
        const sessions = await this.data.call("mqtt.device", "pos_stop_session", [[machine.id]]);
        this.models.loadData({ "mqtt.session": sessions });
        return sessions;
    },

    /** The order no longer holds these sessions (best effort: the server
     * releases them when the till's session closes anyway). */
    owmRelease(sessions, orderUuid) {
        if (!sessions.length || this.data.network.offline) {
            return;
        }
        for (const session of sessions) {
            if (session.pos_reserved_uuid === orderUuid) {
                session.pos_reserved_uuid = false;
            }
        }
        this.data
            .silentCall("mqtt.session", "pos_release", [
                sessions.map((s) => s.id),
                orderUuid,
                this.session.id,
            ])
            .catch(() => {});
    },

    postSyncAllOrders(orders) {
        super.postSyncAllOrders(...arguments);
        for (const order of orders || []) {
            if (!order.finalized) {
                continue;
            }
            for (const line of order.lines) {
                if (line.mqtt_session_id && line.qty > 0) {
                    line.mqtt_session_id.pos_charged = true;
                }
            }
        }
    },
});
