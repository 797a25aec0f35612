/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// The Machines screen of the till: every machine of the shop live (state,
// power, how long its running session lasts), its sessions not yet charged,
// and the selected customer's; a session goes onto the order in one click,
// a running one after "Stop now".

import { Component, onWillUnmount, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { usePos } from "@point_of_sale/app/store/pos_hook";
import { deserializeDateTime } from "@web/core/l10n/dates";
import { formatDuration, formatStart } from "@open_workshop_mqtt/js/duration";

const { DateTime } = luxon;

const STATE_LABELS = {
    idle: _t("Off"),
    starting: _t("Starting"),
    standby: _t("Standby"),
    working: _t("Working"),
    stopping: _t("Stopping"),
};

export class OwmMachinesScreen extends Component {
    static template = "open_workshop_mqtt_pos.MachinesScreen";
    static props = {};
    static storeOnOrder = false;

    setup() {
        this.pos = usePos();
        this.clock = useState({ now: Date.now() });
        const timer = setInterval(() => (this.clock.now = Date.now()), 1000);
        onWillUnmount(() => clearInterval(timer));
    }

    get machines() {
        return this.pos.owmMachines;
    }
    get partner() {
        return this.pos.get_order()?.get_partner();
    }
    get partnerSessions() {
        return this.partner ? this.pos.owmSessionsOfPartner(this.partner) : [];
    }
    get offline() {
        return this.pos.data.network.offline;
    }

    stateLabel(machine) {
        if (!machine.online) {
            return _t("Offline");
        }
        return STATE_LABELS[machine.current_state] || machine.current_state;
    }
    stateClass(machine) {
        if (!machine.online) {
            return "text-bg-dark";
        }
        return (
            {
                working: "text-bg-success",
                standby: "text-bg-warning",
                starting: "text-bg-info",
                stopping: "text-bg-info",
            }[machine.current_state] || "text-bg-secondary"
        );
    }
    power(machine) {
        return `${Math.round(machine.current_power_w || 0)} W`;
    }
    running(machine) {
        if (!machine.running_since) {
            return "";
        }
        const since = deserializeDateTime(machine.running_since);
        const seconds = (this.clock.now - since.toMillis()) / 1000;
        return _t("Since %(time)s · %(duration)s", {
            time: formatStart(since, DateTime.now()),
            duration: formatDuration(seconds),
        });
    }
    sessions(machine) {
        return this.pos.owmSessionsOf(machine);
    }
    when(session) {
        return formatStart(deserializeDateTime(session.start_time), DateTime.now());
    }
    duration(session) {
        return formatDuration(session.working_duration_s + session.standby_duration_s);
    }
    split(session) {
        return _t("working %(working)s, standby %(standby)s", {
            working: formatDuration(session.working_duration_s),
            standby: formatDuration(session.standby_duration_s),
        });
    }
    kwh(session) {
        return ((session.energy_wh || 0) / 1000).toFixed(2);
    }
    price(session) {
        return this.env.utils.formatCurrency(session.price || 0);
    }
    inOrder(session) {
        return Boolean(this.pos.owmLineOf(session));
    }

    async add(session) {
        const line = await this.pos.owmAddSession(session);
        if (line) {
            this.pos.showScreen("ProductScreen");
        }
    }
    async stopNow(machine) {
        await this.pos.owmStopMachine(machine);
    }
    back() {
        this.pos.showScreen("ProductScreen");
    }
}

registry.category("pos_screens").add("OwmMachinesScreen", OwmMachinesScreen);
